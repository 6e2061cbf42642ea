import Foundation

/// A rule a decoded value breaks, said where: `tasks[3].env` and "env maps names ...". What the
/// validation steps throw; people read it as `tasks[3].env: env maps names ...` (the API's 400
/// detail, the CLI's message with the file's line and column).
public struct BrokenRule: Error, Equatable, Sendable, CustomStringConvertible {
    /// The field's path from the validated value: `name`, `tasks[3].env`, `frames` in a job.
    public let field: String
    /// What the value must be.
    public let rule: String
    /// The job is fine field by field but expands to more than `Limits.expandedJobBytes`: a 413.
    public let isTooLarge: Bool

    public init(field: String, rule: String, isTooLarge: Bool = false) {
        self.field = field
        self.rule = rule
        self.isTooLarge = isTooLarge
    }

    public var description: String { "\(field): \(rule)" }

    /// The answer on the wire: 400 naming the field, or 413 for a job too large to expand.
    public var refusal: PaddockError {
        isTooLarge ? .tooLarge(rule) : .invalid(description, field: field)
    }

    /// The same, thrown from inside a decoder whose value sits at `codingPath` (a task decoded on its
    /// own, a job nested in another body): `WireJSON.describe` then says it as any decoding failure.
    func decodingError(at codingPath: [any CodingKey]) -> any Error {
        if isTooLarge { return refusal }
        return DecodingError.dataCorrupted(.init(codingPath: codingPath + [AnyCodingKey(stringValue: field)],
                                                 debugDescription: rule))
    }
}

/// Throws the rule a check found broken (`broken` is nil when the value is fine); the field's path
/// is only written out on failure (100 000 tasks are checked on every large submission).
@inline(__always)
func require(_ broken: String?, at field: @autoclosure () -> String) throws(BrokenRule) {
    if let broken { throw BrokenRule(field: field(), rule: broken) }
}

/// A wire value whose rules are checked after it is decoded, by a pure function of the decoded
/// value: its `init(from:)` decodes plainly (strict keys, kinds), then calls `decoder.validate(self)`.
protocol ValidatedAfterDecoding {
    /// Throws the first rule the value breaks, its field's path from the value itself.
    func validate() throws(BrokenRule)
}

extension Decoder {
    /// `value.validate()` for a value this decoder has just decoded: a broken rule is thrown as a
    /// decoding failure at its field (`tasks[0].requirements.cpus`), like any other.
    func validate(_ value: some ValidatedAfterDecoding) throws {
        do { try value.validate() } catch { throw error.decodingError(at: codingPath) }
    }
}

/// The rules of single fields, each a pure check: nil when the value is fine, else the rule it
/// breaks. Shared by the validation of every body that carries the field.
enum FieldRules {
    static func name(_ name: String) -> String? {
        !name.isEmpty && name.count <= Limits.nameLength && !name.contains(where: \.isNewline) ? nil
            : "name must be 1 to \(Limits.nameLength) characters on one line"
    }

    static func owner(_ owner: String) -> String? {
        owner.count <= Limits.nameLength && owner.isSafeToken ? nil
            : "owner must be letters, digits and -_.: (≤ \(Limits.nameLength) chars)"
    }

    /// A long-poll's wait: a claim's, an exchange's talkback poll's.
    static func longPollWait(_ wait: Double) -> String? {
        wait.isFinite && wait >= 0 && wait <= Limits.longPollSeconds ? nil
            : "wait must be between 0 and \(Int(Limits.longPollSeconds)) seconds"
    }

    static func priority(_ value: Int) -> String? {
        Limits.priorityRange.contains(value) ? nil
            : "priority must be between \(Limits.priorityRange.lowerBound) and \(Limits.priorityRange.upperBound)"
    }

    static func labels(_ labels: [String: String]) -> String? {
        labels.count <= Limits.labelCount
            && labels.allSatisfy({ $0.key.count <= Limits.tagLength && $0.key.isSafeToken && $0.value.count <= Limits.nameLength })
            ? nil : "at most \(Limits.labelCount) labels; keys of letters, digits and -_.:"
    }

    static func attempts(_ value: Int) -> String? {
        (1...Limits.maxAttempts).contains(value) ? nil : "max_attempts must be between 1 and \(Limits.maxAttempts)"
    }

    static let timeoutRule = "timeout is a positive duration such as 90, \"30s\" or \"2h\" (≤ 30 days)"

    static func timeout(_ seconds: Double) -> String? {
        seconds.isFinite && seconds > 0 && seconds <= DurationText.maximumSeconds ? nil : timeoutRule
    }

    static func command(_ argv: [String]) -> String? {
        guard let first = argv.first, !first.isEmpty else {
            return "command is an argv array with a program first, e.g. [\"echo\", \"hi\"]"
        }
        return argv.count <= Limits.argvCount && argv.allSatisfy({ $0.utf8.count <= Limits.argLength && !$0.contains("\0") })
            ? nil : "command has at most \(Limits.argvCount) arguments of \(Limits.argLength) bytes, no NUL"
    }

    static func env(_ env: [String: String]) -> String? {
        let validName = { (name: String) in
            !name.isEmpty && name.count <= 256 && !(name.first?.isNumber ?? true)
                && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
        }
        return env.count <= Limits.envCount
            && env.allSatisfy({ validName($0.key) && $0.value.utf8.count <= Limits.envValueLength && !$0.value.contains("\0") })
            ? nil : "env maps names ([A-Za-z_][A-Za-z0-9_]*) to values; at most \(Limits.envCount)"
    }

    /// `cwd`: an absolute path.
    static func directory(_ path: String) -> String? {
        path.hasPrefix("/") && path.utf8.count <= Limits.pathLength && !path.contains("\0") ? nil
            : "cwd must be an absolute path"
    }

    static func dependencies(_ names: [String]) -> String? {
        names.count <= 1000 ? nil : "at most 1000 dependencies"
    }

    /// At most `Limits.taskParameters` names of 1 to 64 characters, each value at most
    /// `Limits.taskParameterValue` bytes.
    static func parameters(_ parameters: [String: String]) -> String? {
        parameters.count <= Limits.taskParameters
            && parameters.allSatisfy({ (1...64).contains($0.key.count) && $0.value.utf8.count <= Limits.taskParameterValue
                && !$0.key.contains("\0") && !$0.value.contains("\0") })
            ? nil : "parameters maps at most \(Limits.taskParameters) names (1 to 64 characters) to values of at most \(Limits.taskParameterValue) bytes"
    }

    static func jobsAfter(_ jobs: [JobID]) -> String? {
        jobs.count <= 1000 ? nil : "at most 1000 jobs in 'after'"
    }

    static func progressRegex(_ pattern: String) -> String? {
        ProgressLine.Pattern(pattern) != nil ? nil
            : "progress_regex is a regular expression (≤ 256 characters) with one capture group"
    }

    static func chunk(_ size: Int) -> String? {
        size >= 1 && size <= 1_000_000 ? nil : "chunk must be ≥ 1"
    }

    /// A task's progress, a fraction.
    static func progress(_ value: Double) -> String? {
        value.isFinite && value >= 0 && value <= 1 ? nil : "progress is between 0 and 1"
    }

    static func cpus(_ cpus: Double) -> String? {
        cpus.isFinite && cpus >= 0 && cpus <= Limits.maxCPUs ? nil : "cpus must be a number between 0 and \(Int(Limits.maxCPUs))"
    }

    /// `ram`, `disk`: bytes, at most `ByteSize.maximum`.
    static func bytes(_ bytes: Int64, _ field: String) -> String? {
        bytes >= 0 && bytes <= ByteSize.maximum ? nil : "\(field) must be between 0 and 1PiB"
    }

    static let gpusRule = "gpus must be a whole number between 0 and \(Limits.maxGPUs)"

    static func gpus(_ gpus: Int64) -> String? {
        (0...Limits.maxGPUs).contains(gpus) ? nil : gpusRule
    }

    static func tags(_ tags: [String]) -> String? {
        tags.count <= Limits.tagCount && tags.allSatisfy({ $0.count <= Limits.tagLength && $0.isSafeToken }) ? nil
            : "at most \(Limits.tagCount) tags of letters, digits and -_.: (each ≤ \(Limits.tagLength) chars)"
    }

    static func agentName(_ name: String) -> String? {
        name.count <= Limits.nameLength && name.isSafeToken ? nil
            : "an agent name is letters, digits and -_.: (≤ \(Limits.nameLength) chars)"
    }
}

