/// The JSON text of the string lists and maps the store keeps in TEXT columns (a task's command,
/// env and tags), written directly: with `JSONEncoder` the encoding cost more than the insert for
/// a 100 000-task submission. Read back with `JSONDecoder`, as any JSON.
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
}
