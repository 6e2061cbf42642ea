/// The JSON text of the string lists and maps the store keeps in TEXT columns (a task's command,
/// env and tags), written directly: with `JSONEncoder` the encoding cost more than the insert for
/// a 100 000-task submission. Read back directly too when the text is in the plain form this writes
/// and holds no escape (`strings`, `stringMap`: every lease a claim hands out reads a command and an
/// env); anything else goes through `JSONDecoder`, as any JSON.
enum JSONText {
    static func array(_ values: [String]) -> String {
        var out = "["
        for (index, value) in values.enumerated() {
            if index > 0 { out.append(",") }
            appendString(value, to: &out)
        }
        out.append("]")
        return out
    }

    /// Keys in order: the same map is always the same text.
    static func object(_ values: [String: String]) -> String {
        var out = "{"
        for (index, key) in values.keys.sorted().enumerated() {
            if index > 0 { out.append(",") }
            appendString(key, to: &out)
            out.append(":")
            appendString(values[key] ?? "", to: &out)
        }
        out.append("}")
        return out
    }

    /// `value` as a JSON string: quotes, backslashes and control characters escaped, the rest as is.
    static func appendString(_ value: String, to out: inout String) {
        out.append("\"")
        // Nothing to escape (the common case): appended whole.
        if !value.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out.append(value)
        } else {
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\"": out.append("\\\"")
                case "\\": out.append("\\\\")
                case "\n": out.append("\\n")
                case "\r": out.append("\\r")
                case "\t": out.append("\\t")
                case _ where scalar.value < 0x20:
                    let hex = String(scalar.value, radix: 16)
                    out.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
                default: out.unicodeScalars.append(scalar)
                }
            }
        }
        out.append("\"")
    }

    /// `["a","b"]` with no whitespace, no backslash and no control character: its strings; nil for
    /// any other text (which `JSONDecoder` reads, or refuses).
    static func strings(_ text: String) -> [String]? {
        var utf8 = text.utf8[...]
        guard utf8.first == UInt8(ascii: "["), utf8.last == UInt8(ascii: "]") else { return nil }
        utf8 = utf8.dropFirst().dropLast()
        var values: [String] = []
        while !utf8.isEmpty {
            if !values.isEmpty {
                guard utf8.first == UInt8(ascii: ",") else { return nil }
                utf8 = utf8.dropFirst()
            }
            guard let value = plainString(&utf8) else { return nil }
            values.append(value)
        }
        return values
    }

    /// `{"k":"v"}` in the same plain form, each key once: its map; nil for any other text.
    static func stringMap(_ text: String) -> [String: String]? {
        var utf8 = text.utf8[...]
        guard utf8.first == UInt8(ascii: "{"), utf8.last == UInt8(ascii: "}") else { return nil }
        utf8 = utf8.dropFirst().dropLast()
        var map: [String: String] = [:]
        var first = true
        while !utf8.isEmpty {
            if !first {
                guard utf8.first == UInt8(ascii: ",") else { return nil }
                utf8 = utf8.dropFirst()
            }
            first = false
            guard let key = plainString(&utf8), utf8.first == UInt8(ascii: ":") else { return nil }
            utf8 = utf8.dropFirst()
            guard let value = plainString(&utf8), map.updateValue(value, forKey: key) == nil else { return nil }
        }
        return map
    }

    /// A quoted string with nothing escaped at the head of `utf8`, which it then drops.
    private static func plainString(_ utf8: inout Substring.UTF8View) -> String? {
        guard utf8.first == UInt8(ascii: "\"") else { return nil }
        let body = utf8.dropFirst()
        guard let end = body.firstIndex(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 < 0x20 }),
              body[end] == UInt8(ascii: "\"") else { return nil }
        let value = String(Substring(body[..<end]))
        utf8 = body[body.index(after: end)...]
        return value
    }
}
