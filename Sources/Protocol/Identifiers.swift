/// Typed identifiers. On the wire every id is a JSON string with a one-letter
/// prefix (`j12`, `t345`, `a3`), so that a CLI argument says what it names and a
/// task id can never be mistaken for a job id. In the store they are integers.
public protocol PrefixedID: Hashable, Sendable, Codable, Comparable, CustomStringConvertible, LosslessStringConvertible {
    static var prefix: Character { get }
    var rawValue: Int64 { get }
    init(rawValue: Int64)
}

extension PrefixedID {
    public var description: String { "\(Self.prefix)\(rawValue)" }

    /// Parses `j12` (or a bare `12`); nil for anything else.
    public init?(_ text: String) {
        var digits = Substring(text)
        if digits.first == Self.prefix { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
              let value = Int64(digits), value > 0 else { return nil }
        self.init(rawValue: value)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let id = Self(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a valid id: \(text.prefix(40))")
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

public struct JobID: PrefixedID {
    public static let prefix: Character = "j"
    public let rawValue: Int64
    public init(rawValue: Int64) { self.rawValue = rawValue }
}

public struct TaskID: PrefixedID {
    public static let prefix: Character = "t"
    public let rawValue: Int64
    public init(rawValue: Int64) { self.rawValue = rawValue }
}

public struct AgentID: PrefixedID {
    public static let prefix: Character = "a"
    public let rawValue: Int64
    public init(rawValue: Int64) { self.rawValue = rawValue }
}

/// A lease epoch: bumped every time a task is handed to an agent. Every report
/// about a task carries the epoch it was leased under; a stale one is refused.
public struct LeaseEpoch: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public let rawValue: Int64
    public init(_ rawValue: Int64) { self.rawValue = rawValue }
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Int64.self) {
            rawValue = value
        } else if (try? container.decode(Double.self)) != nil {
            // Foundation would call `1.5` "not valid JSON" with no path: say which field instead.
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "an epoch is a whole number")
        } else {
            rawValue = try container.decode(Int64.self)
        }
    }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
    public var description: String { String(rawValue) }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}
