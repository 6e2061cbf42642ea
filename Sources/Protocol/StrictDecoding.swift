import Foundation

/// Request bodies refuse fields they do not know: a typo such as `"cpu": 4`
/// must not silently become the default of one cpu.
struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension Decoder {
    func rejectUnknownKeys<Keys: CodingKey & CaseIterable>(_ keys: Keys.Type) throws {
        // `Keys(stringValue:)` is the enum's own switch over its names: no set built per object
        // decoded (every report of every exchange goes through here).
        let container = try container(keyedBy: AnyCodingKey.self)
        if let unknown = container.allKeys.first(where: { Keys(stringValue: $0.stringValue) == nil }) {
            let name = unknown.stringValue
            let suggestion = FieldSuggestion.nearest(to: name, among: Keys.allCases.map(\.stringValue))
            throw DecodingError.dataCorrupted(.init(
                codingPath: codingPath + [unknown],
                debugDescription: "unknown field '\(name.prefix(64))'" + (suggestion.map { " (did you mean '\($0)'?)" } ?? "")))
        }
    }
}

/// The known name a misspelt one most likely meant: `comand` → `command`.
enum FieldSuggestion {
    /// The closest of `known` by edit distance, when it is close enough to be a typo (at most a third
    /// of the name's letters differ, and at least one may).
    static func nearest(to name: String, among known: [String]) -> String? {
        guard name.count <= 64 else { return nil }
        let lowered = name.lowercased()
        let scored = known.map { ($0, distance(lowered, $0.lowercased())) }
        guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
        return best.1 <= max(1, name.count / 3) ? best.0 : nil
    }

    /// Levenshtein distance (substitutions, insertions, deletions), with a transposition of
    /// neighbours (`cmomand`) counted as one edit.
    static func distance(_ a: String, _ b: String) -> Int {
        let x = Array(a), y = Array(b)
        guard !x.isEmpty else { return y.count }
        guard !y.isEmpty else { return x.count }
        var rows = [[Int]](repeating: [Int](repeating: 0, count: y.count + 1), count: x.count + 1)
        for i in 0...x.count { rows[i][0] = i }
        for j in 0...y.count { rows[0][j] = j }
        for i in 1...x.count {
            for j in 1...y.count {
                let cost = x[i - 1] == y[j - 1] ? 0 : 1
                rows[i][j] = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost)
                if i > 1, j > 1, x[i - 1] == y[j - 2], x[i - 2] == y[j - 1] {
                    rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
                }
            }
        }
        return rows[x.count][y.count]
    }
}

extension KeyedDecodingContainer {
    /// An integer field. Foundation's JSONDecoder reports a fractional number read as an
    /// integer (`"priority": 1.5`) as "not valid JSON" with no coding path; this says which
    /// field is wrong instead. What is accepted is unchanged.
    func decodeWholeNumber<T: FixedWidthInteger & Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        if let value = try? decode(T.self, forKey: key) { return value }
        if (try? decode(Double.self, forKey: key)) != nil {
            throw DecodingError.dataCorruptedError(forKey: key, in: self,
                debugDescription: "\(key.stringValue) must be a whole number")
        }
        return try decode(T.self, forKey: key)
    }

    func decodeWholeNumberIfPresent<T: FixedWidthInteger & Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard contains(key), try !decodeNil(forKey: key) else { return nil }
        return try decodeWholeNumber(type, forKey: key)
    }

    /// A duration: a number of seconds, or text such as `"30s"` or `"2h"` (`DurationText`). Its
    /// bounds are a rule of the field it fills, checked after decoding (`FieldRules.timeout`).
    func decodeDurationIfPresent(forKey key: Key) throws -> Double? {
        guard contains(key), try !decodeNil(forKey: key) else { return nil }
        if let number = try? decode(Double.self, forKey: key) { return number }
        if let text = try? decode(String.self, forKey: key), let seconds = DurationText.parse(text, maximum: .infinity) {
            return seconds
        }
        throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: FieldRules.timeoutRule)
    }
}

/// Bounds shared by the master's validation and the agent's own checks.
public enum Limits {
    public static let jobSpecBytes = 1 << 20
    public static let nameLength = 256
    public static let argvCount = 4096
    public static let argLength = 64 * 1024
    public static let envCount = 1024
    public static let envValueLength = 64 * 1024
    /// A task's parameter values (`TaskSpec.parameters`): how many, and each value's bytes.
    public static let taskParameters = 64
    public static let taskParameterValue = 4096
    public static let pathLength = 4096
    public static let tagCount = 64
    public static let tagLength = 64
    public static let tasksPerJob = 100_000
    /// What a frame-range template may expand to: its tasks' commands and env, all together (a 1 MiB
    /// body of `{start}` over 100 000 frames would otherwise be ~100 GB in the master's memory).
    public static let expandedJobBytes = 64 << 20
    public static let labelCount = 64
    public static let maxCPUs: Double = 65_536
    public static let maxGPUs: Int64 = 1024
    public static let maxAttempts = 100
    public static let priorityRange: ClosedRange<Int> = -1_000_000...1_000_000
    public static let logChunkBytes = 4 << 20
    public static let logBytesPerTask: Int64 = 64 << 20
    public static let claimSlots = 1024
    public static let longPollSeconds: Double = 60
    public static let pageSize = 100
    public static let maxPageSize = 1000
}

extension String {
    /// Tags, names of agents: letters, digits and `-_.:`; nothing a shell or a path would read.
    var isSafeToken: Bool {
        !isEmpty && allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || "-_.:".contains($0) }
    }
}
