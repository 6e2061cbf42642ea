import Foundation

/// OpenJD path mapping rules (`pathmapping-1.0`): a path written for one host (its source, POSIX or
/// WINDOWS) is rewritten for the host that runs the task. Rules come from the agent's config and
/// from the job; the agent applies them when it launches a task (see `PathMappingEnvironment`).
public struct PathMappingRule: Codable, Sendable, Equatable {
    public enum Format: String, Codable, Sendable { case posix = "POSIX", windows = "WINDOWS" }
    public var sourcePathFormat: Format
    public var sourcePath: String
    public var destinationPath: String

    public init(sourcePathFormat: Format, sourcePath: String, destinationPath: String) {
        self.sourcePathFormat = sourcePathFormat
        self.sourcePath = sourcePath
        self.destinationPath = destinationPath
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case sourcePathFormat = "source_path_format"
        case sourcePath = "source_path"
        case destinationPath = "destination_path"
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let format = try c.decode(String.self, forKey: .sourcePathFormat)
        // An enumeration read from its text (case aside): a kind, not a rule.
        guard let parsed = Format(rawValue: format.uppercased()) else {
            throw DecodingError.dataCorruptedError(forKey: .sourcePathFormat, in: c, debugDescription: "POSIX or WINDOWS")
        }
        sourcePathFormat = parsed
        sourcePath = try c.decode(String.self, forKey: .sourcePath)
        destinationPath = try c.decode(String.self, forKey: .destinationPath)
        try decoder.validate(self)
    }

    /// The mapped path, or nil when `path` is not under the rule's source. Paths are compared by
    /// their parts (`/a//b/./c` is `/a/b/c`; a WINDOWS source also takes `/` and ignores case), `..`
    /// is kept, a trailing separator stays; the result uses `/` (agents run POSIX hosts).
    public func apply(_ path: String) -> String? {
        let source = Self.parts(sourcePath, sourcePathFormat)
        let given = Self.parts(path, sourcePathFormat)
        guard given.count >= source.count else { return nil }
        let same = sourcePathFormat == .windows
            ? zip(source, given).allSatisfy { $0.lowercased() == $1.lowercased() }
            : zip(source, given).allSatisfy { $0 == $1 }
        guard same else { return nil }
        let destination = Self.parts(destinationPath, .posix)
        let rest = Array(given.dropFirst(source.count))
        var result = Self.join(destination + rest)
        let trailing: Character = sourcePathFormat == .windows ? "\\" : "/"
        if path.last == trailing || (sourcePathFormat == .windows && path.last == "/"), !result.hasSuffix("/") { result += "/" }
        return result
    }

    /// A path's parts: its anchor (`/`, or for WINDOWS a drive `C:\` or share `\\server\share\`) then its names.
    static func parts(_ path: String, _ format: Format) -> [String] {
        switch format {
        case .posix:
            let names = path.split(separator: "/").map(String.init).filter { $0 != "." }
            // POSIX keeps exactly two leading slashes apart; a rule path never needs that: one root.
            return (path.hasPrefix("/") ? ["/"] : []) + names
        case .windows:
            let text = path.replacingOccurrences(of: "/", with: "\\")
            var anchor = ""
            var rest = Substring(text)
            if text.hasPrefix("\\\\") {
                let names = text.dropFirst(2).split(separator: "\\", maxSplits: 2, omittingEmptySubsequences: false)
                if names.count >= 2 {
                    anchor = "\\\\" + String(names[0]) + "\\" + String(names[1]) + "\\"
                    rest = names.count > 2 ? names[2] : ""
                }
            } else if text.count >= 2, text.dropFirst().first == ":", text.first?.isLetter == true {
                anchor = String(text.prefix(2))
                rest = text.dropFirst(2)
                if rest.hasPrefix("\\") { anchor += "\\" }
            } else if text.hasPrefix("\\") {
                anchor = "\\"
            }
            let names = rest.split(separator: "\\").map(String.init).filter { $0 != "." }
            return (anchor.isEmpty ? [] : [anchor]) + names
        }
    }

    static func join(_ parts: [String]) -> String {
        guard let first = parts.first else { return "." }
        if first == "/" { return "/" + parts.dropFirst().joined(separator: "/") }
        return parts.joined(separator: "/")
    }
}

/// A set of rules as OpenJD writes them: `{"version": "pathmapping-1.0", "path_mapping_rules": [...]}`.
public struct PathMappingRules: Codable, Sendable, Equatable {
    public static let version = "pathmapping-1.0"
    public static let maxRules = 64
    public static let pathLength = 4096
    public var rules: [PathMappingRule]

    public init(_ rules: [PathMappingRule]) { self.rules = rules }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case version
        case rules = "path_mapping_rules"
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let version = try c.decode(String.self, forKey: .version)
        // The document's kind: only this version is read at all.
        guard version == Self.version else {
            throw DecodingError.dataCorruptedError(forKey: .version, in: c, debugDescription: "must be \(Self.version)")
        }
        rules = try c.decode([PathMappingRule].self, forKey: .rules)
        try decoder.validate(self)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(Self.version, forKey: .version)
        try c.encode(rules, forKey: .rules)
    }

    /// The path mapped by the rule with the longest source that matches (as OpenJD's sessions order
    /// them), or unchanged.
    public func map(_ path: String) -> String {
        let ordered = rules.enumerated().sorted {
            let (a, b) = (PathMappingRule.parts($0.element.sourcePath, $0.element.sourcePathFormat).count,
                          PathMappingRule.parts($1.element.sourcePath, $1.element.sourcePathFormat).count)
            return a != b ? a > b : $0.offset < $1.offset
        }
        for (_, rule) in ordered {
            if let mapped = rule.apply(path) { return mapped }
        }
        return path
    }

    /// No rules, as `json` writes them.
    static let emptyJSON = #"{"path_mapping_rules":[],"version":"pathmapping-1.0"}"#

    /// The rules as the JSON a task reads (`{{Session.PathMappingRulesFile}}`). Every launch sets it,
    /// most with no rules: that one is written out, not encoded each time.
    public var json: String {
        guard !rules.isEmpty else { return Self.emptyJSON }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? Self.emptyJSON
    }
}

extension PathMappingRule: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) {
        for (value, field) in [(sourcePath, "source_path"), (destinationPath, "destination_path")] {
            try require(value.isEmpty || value.count > PathMappingRules.pathLength || value.contains("\0")
                            ? "a path of 1 to \(PathMappingRules.pathLength) characters, without NUL" : nil, at: field)
        }
    }
}

extension PathMappingRules: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) {
        try require(rules.count <= Self.maxRules ? nil : "at most \(Self.maxRules) rules", at: "path_mapping_rules")
    }
}
