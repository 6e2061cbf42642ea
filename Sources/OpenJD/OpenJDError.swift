/// What is wrong with a template or a parameter value: the field, as a path into the template
/// (`steps[1].parameterSpace.taskParameterDefinitions[0].range`), and the rule it breaks.
public struct OpenJDError: Error, Sendable, Equatable, CustomStringConvertible {
    public var field: String
    public var message: String

    public init(_ field: String, _ message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { field.isEmpty ? message : "\(field): \(message)" }
}

/// A place in the template, for messages.
struct FieldPath: Sendable, CustomStringConvertible {
    let text: String
    init(_ text: String = "") { self.text = text }
    func key(_ name: String) -> FieldPath { FieldPath(text.isEmpty ? name : "\(text).\(name)") }
    func index(_ i: Int) -> FieldPath { FieldPath("\(text)[\(i)]") }
    var description: String { text }
    func error(_ message: String) -> OpenJDError { OpenJDError(text, message) }
}

/// Reads one object of the template: typed fields, and no field it does not know
/// (the reference implementation refuses extra fields the same way).
struct ObjectReader {
    let object: TemplateObject
    let path: FieldPath

    init(_ value: TemplateValue, at path: FieldPath, known: Set<String>) throws(OpenJDError) {
        guard case .object(let object) = value else { throw path.error("must be an object, not \(value.kind)") }
        self.object = object
        self.path = path
        if let extra = object.keys.first(where: { !known.contains($0) }) {
            throw path.key(extra).error("unknown field (extra fields are not permitted)")
        }
    }

    func has(_ key: String) -> Bool { object[key] != nil }

    func value(_ key: String) throws(OpenJDError) -> TemplateValue {
        guard let value = object[key] else { throw path.key(key).error("field required") }
        return value
    }

    func string(_ key: String) throws(OpenJDError) -> String {
        let value = try value(key)
        guard case .string(let text) = value else { throw path.key(key).error("must be a string, not \(value.kind)") }
        return text
    }

    func optionalString(_ key: String) throws(OpenJDError) -> String? {
        has(key) ? try string(key) : nil
    }

    func list(_ key: String, min: Int = 1, max: Int = Int.max) throws(OpenJDError) -> [TemplateValue] {
        let value = try value(key)
        guard case .array(let items) = value else { throw path.key(key).error("must be a list, not \(value.kind)") }
        guard items.count >= min else { throw path.key(key).error("must have at least \(min) item(s)") }
        guard items.count <= max else { throw path.key(key).error("must have at most \(max) items, not \(items.count)") }
        return items
    }

    func optionalList(_ key: String, min: Int = 1, max: Int = Int.max) throws(OpenJDError) -> [TemplateValue]? {
        has(key) ? try list(key, min: min, max: max) : nil
    }

    func bool(_ key: String) throws(OpenJDError) -> Bool? {
        guard let value = object[key] else { return nil }
        guard case .bool(let flag) = value else { throw path.key(key).error("must be true or false, not \(value.kind)") }
        return flag
    }

    /// A whole number given as a number or a string of one (`<integer> | <intstring>`).
    func integer(_ key: String, strings: Bool = true) throws(OpenJDError) -> Int? {
        guard let value = object[key] else { return nil }
        guard let number = Numbers.integer(value, strings: strings) else {
            throw path.key(key).error("must be an integer\(strings ? " or integer string" : "")")
        }
        return number
    }

    /// A number given as a number or a string of one.
    func number(_ key: String, strings: Bool = true) throws(OpenJDError) -> Double? {
        guard let value = object[key] else { return nil }
        guard let number = Numbers.double(value, strings: strings) else {
            throw path.key(key).error("must be a number\(strings ? " or a string of one" : "")")
        }
        return number
    }
}

enum Numbers {
    /// `12`, `"12"`, `" -3 "`, `"1_000"`: a whole number (not `1.0`, not `true`), read from text
    /// as the reference implementation (Python's `int`) reads it.
    static func integer(_ value: TemplateValue, strings: Bool = true) -> Int? {
        switch value {
        case .number(let text): return Int(text)
        case .string(let text) where strings: return integer(text)
        default: return nil
        }
    }

    /// A number, or a string of one (`"2.5"`, `" 1e2 "`, `"1_0"`, `"inf"`) as Python's `float`
    /// and `Decimal` read them. Numbers written as numbers must be finite.
    static func double(_ value: TemplateValue, strings: Bool = true) -> Double? {
        switch value {
        case .number(let text): return Double(text).flatMap { $0.isFinite ? $0 : nil }
        case .string(let text) where strings: return double(text)
        default: return nil
        }
    }

    /// Python's `int(text)`: surrounding whitespace, a sign, digits with single `_` between them.
    static func integer(_ text: String) -> Int? {
        guard let digits = plainDigits(text.trimmingSpaces, allowSign: true) else { return nil }
        return Int(digits)
    }

    /// Python's `float(text)` (and `Decimal`): whitespace, a sign, digits (with `_` between
    /// them), a point, an exponent; or inf, infinity, nan.
    static func double(_ text: String) -> Double? {
        var body = Substring(text.trimmingSpaces)
        var sign = ""
        if let first = body.first, first == "+" || first == "-" {
            sign = first == "-" ? "-" : ""
            body = body.dropFirst()
        }
        switch body.lowercased() {
        case "inf", "infinity": return sign == "-" ? -.infinity : .infinity
        case "nan": return .nan
        default: break
        }
        var mantissa = body
        var exponent = ""
        if let e = body.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = body[..<e]
            guard let digits = plainDigits(String(body[body.index(after: e)...]), allowSign: true) else { return nil }
            exponent = "e" + digits
        }
        let parts = mantissa.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first else { return nil }
        let fraction = parts.count == 2 ? parts[1] : ""
        guard !(whole.isEmpty && fraction.isEmpty) else { return nil }
        guard let w = whole.isEmpty ? "" : plainDigits(String(whole), allowSign: false),
              let f = fraction.isEmpty ? "" : plainDigits(String(fraction), allowSign: false) else { return nil }
        return Double(sign + (w.isEmpty ? "0" : w) + "." + (f.isEmpty ? "0" : f) + exponent)
    }

    /// Digits with single underscores between them (and a leading sign if allowed), underscores removed.
    private static func plainDigits(_ text: String, allowSign: Bool) -> String? {
        var body = Substring(text)
        var sign = ""
        if allowSign, let first = body.first, first == "+" || first == "-" {
            sign = String(first)
            body = body.dropFirst()
        }
        guard let first = body.first, let last = body.last, first.isASCII, first.isNumber, last.isASCII, last.isNumber,
              !body.contains("__"), body.allSatisfy({ ($0.isASCII && $0.isNumber) || $0 == "_" }) else { return nil }
        return sign + body.filter { $0 != "_" }
    }

    /// A number written in the template as text the way the reference renders it: an integer
    /// literal as an integer, any other number as the shortest decimal that reads back the same
    /// (`2.0` stays `2.0`, `1.50` becomes `1.5`).
    static func render(number text: String) -> String {
        if let whole = Int(text) { return String(whole) }
        if let value = Double(text) { return "\(value)" }
        return text
    }
}

extension String {
    var trimmingSpaces: String {
        var scalars = Substring(self)
        while let first = scalars.first, first == " " || first == "\t" || first == "\n" || first == "\r" { scalars.removeFirst() }
        while let last = scalars.last, last == " " || last == "\t" || last == "\n" || last == "\r" { scalars.removeLast() }
        return String(scalars)
    }

    /// `<Identifier>`: latin letters, digits and `_`, not starting with a digit, 1 to 64 characters.
    var isOpenJDIdentifier: Bool {
        guard let first = unicodeScalars.first, count <= 64 else { return false }
        let letter = { (s: Unicode.Scalar) in ("a"..."z").contains(s) || ("A"..."Z").contains(s) || s == "_" }
        return letter(first) && unicodeScalars.allSatisfy { letter($0) || ("0"..."9").contains($0) }
    }

    /// Any character but the Unicode Cc (control) category.
    var hasControlCharacter: Bool {
        unicodeScalars.contains { $0.properties.generalCategory == .control }
    }
}
