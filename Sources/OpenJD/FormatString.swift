/// `<FormatString>`: text with `{{ Name.Dotted.Reference }}` interpolations (2023-09 §7.3).
enum FormatString {
    enum Part: Equatable {
        case text(String)
        case reference(String)
    }

    /// Splits a format string into text and references; an unclosed `{{` or a reference that is
    /// not a dotted identifier is an error.
    static func parse(_ text: String, at path: FieldPath) throws(OpenJDError) -> [Part] {
        var parts: [Part] = []
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            if open.lowerBound > rest.startIndex { parts.append(.text(String(rest[..<open.lowerBound]))) }
            let after = rest[open.upperBound...]
            guard let close = after.range(of: "}}") else {
                throw path.error("failed to parse interpolation expression in '\(text.prefix(128))': braces mismatch ('{{' without '}}')")
            }
            let name = String(after[..<close.lowerBound]).trimmingSpaces
            let pieces = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard !name.isEmpty, pieces.allSatisfy(\.isOpenJDIdentifier) else {
                throw path.error("'{{\(after[..<close.lowerBound].prefix(64))}}' is not a value reference (a dotted name such as Param.Frame)")
            }
            parts.append(.reference(name))
            rest = after[close.upperBound...]
        }
        if !rest.isEmpty { parts.append(.text(String(rest))) }
        return parts
    }

    static func check(_ text: String, at path: FieldPath) throws(OpenJDError) {
        _ = try parse(text, at: path)
    }

    static func checkNames(_ text: String, at path: FieldPath, allowed: Set<String>) throws(OpenJDError) {
        for case .reference(let name) in try parse(text, at: path) where !allowed.contains(name) {
            throw path.error("variable \(name) does not exist at this location")
        }
    }

    static func hasReferences(_ text: String) -> Bool {
        text.contains("{{")
    }
}

/// A resolved format string: text, with the session's working directory left as a marker where
/// it is only known on the host that runs the task (`{{Session.WorkingDirectory}}`, `{{Task.File.X}}`).
public struct ResolvedString: Sendable, Equatable {
    public enum Piece: Sendable, Equatable {
        case text(String)
        case sessionDirectory
        /// The value of an environment variable the agent sets on the host (a path-mapped value).
        case variable(String)
    }
    public var pieces: [Piece]

    public init(_ pieces: [Piece]) {
        var merged: [Piece] = []
        for piece in pieces {
            if case .text(let next) = piece, case .text(let previous)? = merged.last {
                merged[merged.count - 1] = .text(previous + next)
            } else if piece != .text("") {
                merged.append(piece)
            }
        }
        self.pieces = merged
    }

    /// The text, when it does not depend on the session directory.
    public var plain: String? {
        switch pieces.count {
        case 0: return ""
        case 1: if case .text(let text) = pieces[0] { return text } else { return nil }
        default: return nil
        }
    }
}

/// The values format strings may reference in one scope.
struct SymbolTable {
    var values: [String: ResolvedString] = [:]
    /// What a message says when a name is not available here (e.g. the Task scope outside a step script).
    var scopeNote = ""

    subscript(name: String) -> ResolvedString? {
        get { values[name] }
        set { values[name] = newValue }
    }

    func resolve(_ text: String, at path: FieldPath) throws(OpenJDError) -> ResolvedString {
        try resolve(try FormatString.parse(text, at: path), at: path)
    }

    func resolve(_ parts: [FormatString.Part], at path: FieldPath) throws(OpenJDError) -> ResolvedString {
        var pieces: [ResolvedString.Piece] = []
        for part in parts {
            switch part {
            case .text(let text): pieces.append(.text(text))
            case .reference(let name):
                guard let value = values[name] else {
                    throw path.error("variable \(name) does not exist at this location\(scopeNote)")
                }
                pieces += value.pieces
            }
        }
        return ResolvedString(pieces)
    }

    /// A format string that must resolve to text known at submission.
    func resolvePlain(_ text: String, at path: FieldPath) throws(OpenJDError) -> String {
        let resolved = try resolve(text, at: path)
        guard let plain = resolved.plain else {
            throw path.error("refers to the session's working directory, which is not known at this location")
        }
        return plain
    }
}
