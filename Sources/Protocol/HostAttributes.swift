import Foundation

/// Host attributes (OpenJD's `attr.worker.os.family`, `attr.worker.cpu.arch`, `attr.custom.NAME`)
/// expressed as tags, so that scheduling stays tag matching and nothing new is stored:
///
/// - an agent has the attribute NAME with value V as the tag `NAME:V` (`os.family:linux`,
///   `cpu.arch:x86_64`, `custom.host_config:HostConfigA`; a multi-valued custom attribute, one tag per value);
/// - a task that needs NAME to be V needs the tag `NAME:V` (an `allOf` of several values, each of them);
/// - a task that needs NAME to be any of V1, V2... needs the tag `any:NAME:V1:V2...`, which an agent
///   satisfies with any one of `NAME:V1`, `NAME:V2`... (a value never holds a `:`).
///
/// Names are lower-cased (OpenJD capability names are case-insensitive), as are the values of the
/// two standard attributes; custom values keep their case.
public enum HostAttributes {
    /// The prefix of a tag that asks for one value among several.
    public static let anyPrefix = "any:"

    public static let osFamily = "os.family"
    public static let cpuArch = "cpu.arch"
    /// The values OpenJD defines for the standard attributes.
    public static let standard: [String: Set<String>] = [osFamily: ["linux", "windows", "macos"], cpuArch: ["x86_64", "arm64"]]

    public enum Problem: Error, Equatable, CustomStringConvertible {
        case badName(String)
        case badValue(name: String, value: String)
        case noValue(name: String)
        case tooLong(String)

        public var description: String {
            switch self {
            case .badName(let name):
                "'\(name)' is not an attribute name: os.family, cpu.arch or custom.NAME (NAME of letters, digits and _, not starting with a digit)"
            case .badValue(let name, let value):
                if let values = HostAttributes.standard[name] {
                    "'\(value)' is not a value of \(name): one of \(values.sorted().joined(separator: ", "))"
                } else {
                    "'\(value)' is not an attribute value: letters, digits, _ and -, not starting with a digit or -"
                }
            case .noValue(let name): "\(name) needs at least one value"
            case .tooLong(let tag): "'\(tag)' is longer than a tag may be (\(Limits.tagLength) characters)"
            }
        }
    }

    /// The canonical name: `attr.` dropped, lower-cased; `custom.NAME` or one of the standard two.
    public static func name(_ raw: String) throws(Problem) -> String {
        var name = raw.lowercased()
        if name.hasPrefix("attr.") { name.removeFirst("attr.".count) }
        if name.hasPrefix("worker.") { name.removeFirst("worker.".count) }
        if standard[name] != nil { return name }
        guard name.hasPrefix("custom."), isIdentifier(name.dropFirst("custom.".count)) else { throw .badName(raw) }
        return name
    }

    /// A value checked for `name` (canonical): lower-cased and one of the known for a standard attribute.
    public static func value(_ raw: String, of name: String) throws(Problem) -> String {
        if let values = standard[name] {
            guard values.contains(raw.lowercased()) else { throw .badValue(name: name, value: raw) }
            return raw.lowercased()
        }
        guard raw.count <= 100, let first = raw.first, first.isASCII, first.isLetter || first == "_",
              raw.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
        else { throw .badValue(name: name, value: raw) }
        return raw
    }

    /// The tag an agent carries for one value of an attribute.
    public static func tag(_ name: String, _ value: String) throws(Problem) -> String {
        let canonical = try Self.name(name)
        let checked = try Self.value(value, of: canonical)
        return try bounded("\(canonical):\(checked)")
    }

    /// The tags a task needs for an attribute: one per `allOf` value, and one `any:` tag for `anyOf`
    /// (a plain tag when it has a single value).
    public static func requirement(_ name: String, anyOf: [String]?, allOf: [String]?) throws(Problem) -> [String] {
        let canonical = try Self.name(name)
        var tags: [String] = []
        for value in allOf ?? [] {
            let checked = try Self.value(value, of: canonical)
            tags.append(try bounded("\(canonical):\(checked)"))
        }
        if let anyOf {
            var distinct: [String] = []
            for value in anyOf {
                let checked = try Self.value(value, of: canonical)
                if !distinct.contains(checked) { distinct.append(checked) }
            }
            switch distinct.count {
            case 0: throw .noValue(name: canonical)
            case 1: tags.append(try bounded("\(canonical):\(distinct[0])"))
            default: tags.append(try bounded(anyPrefix + canonical + ":" + distinct.joined(separator: ":")))
            }
        }
        if anyOf == nil && (allOf ?? []).isEmpty { throw .noValue(name: canonical) }
        return tags
    }

    /// True when an agent with `tags` satisfies the required tag `required`.
    public static func satisfies(_ tags: Set<String>, _ required: String) -> Bool {
        if tags.contains(required) { return true }
        if required.hasPrefix(HostAmounts.requirementPrefix) { return HostAmounts.satisfies(tags, required) }
        guard required.hasPrefix(anyPrefix) else { return false }
        let parts = required.dropFirst(anyPrefix.count).split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count >= 3, let name = parts.first, !name.isEmpty else { return false }
        return parts.dropFirst().contains { !$0.isEmpty && tags.contains("\(name):\($0)") }
    }

    /// An agent's `--attr NAME=VALUE` (NAME a custom attribute's, with or without `attr.custom.`).
    public static func declared(_ text: String) throws(Problem) -> String {
        guard let equals = text.firstIndex(of: "=") else { throw .badName(text) }
        var name = String(text[..<equals]).trimmingCharacters(in: .whitespaces)
        let value = String(text[text.index(after: equals)...]).trimmingCharacters(in: .whitespaces)
        let lowered = name.lowercased()
        if !lowered.hasPrefix("attr.") && !lowered.hasPrefix("custom.") && standard[lowered] == nil { name = "custom." + name }
        return try tag(name, value)
    }

    static func isIdentifier(_ text: Substring) -> Bool {
        guard let first = text.first, first.isASCII, first.isLetter || first == "_" else { return false }
        return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
    }

    static func bounded(_ tag: String) throws(Problem) -> String {
        guard tag.count <= Limits.tagLength else { throw .tooLong(tag) }
        return tag
    }
}
