import Foundation

/// A rule a submitted job breaks, said where: `tasks[3].env` and "env maps names ...". What the
/// validation step throws; people read it as `tasks[3].env: env maps names ...` (the API's 400
/// detail, the CLI's message with the file's line and column).
public struct BrokenRule: Error, Equatable, Sendable, CustomStringConvertible {
    /// The field's path from the body's root: `name`, `tasks[3].env`, `frames`.
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

/// The rules of single fields, each a pure check: nil when the value is fine, else the rule it
/// breaks. Shared by the job's validation and the bodies that carry the same fields (`JobPatch`,
/// `TaskBulkPatch`).
enum FieldRules {
    static func name(_ name: String) -> String? {
        !name.isEmpty && name.count <= Limits.nameLength && !name.contains(where: \.isNewline) ? nil
            : "name must be 1 to \(Limits.nameLength) characters on one line"
    }

    static func owner(_ owner: String) -> String? {
        owner.count <= Limits.nameLength && owner.isSafeToken ? nil
            : "owner must be letters, digits and -_.: (≤ \(Limits.nameLength) chars)"
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
}

/// A job that passed every rule: its tasks listed (a frame template expanded), the dependencies
/// among them resolved once. Only validation makes one; it is what the store takes.
public struct ValidatedJob: Sendable {
    public let submission: JobSubmission
    /// `submission.tasks`' dependencies, by index: the store inserts these edges as they are.
    public let graph: DependencyGraph
}

extension TaskSpec {
    /// Checks the task's fields; `index` is its place in the job (`tasks[3].env`), nil for a task
    /// on its own (`env`).
    public func validate(at index: Int? = nil) throws(BrokenRule) {
        func path(_ key: String) -> String { index.map { "tasks[\($0)].\(key)" } ?? key }
        try require(FieldRules.name(name), at: path("name"))
        try require(FieldRules.command(command), at: path("command"))
        try require(FieldRules.env(env), at: path("env"))
        if let cwd { try require(FieldRules.directory(cwd), at: path("cwd")) }
        if let maxAttempts { try require(FieldRules.attempts(maxAttempts), at: path("max_attempts")) }
        if let timeout { try require(FieldRules.timeout(timeout), at: path("timeout")) }
        if let priority { try require(FieldRules.priority(priority), at: path("priority")) }
        try require(FieldRules.dependencies(dependsOn), at: path("depends_on"))
        try require(FieldRules.parameters(parameters), at: path("parameters"))
    }
}

extension FrameTemplate {
    /// The template's tasks, one per chunk of frames with `{start}`/`{end}` substituted; the
    /// template is checked, and what it would expand to bounded, before anything is expanded.
    public func expanded() throws(BrokenRule) -> [TaskSpec] {
        try require(FieldRules.chunk(chunk), at: "chunk")
        try require(FieldRules.command(command), at: "command")
        try require(FieldRules.env(env), at: "env")
        if let cwd { try require(FieldRules.directory(cwd), at: "cwd") }
        let chunks = frames.chunks(of: chunk)
        guard chunks.count <= Limits.tasksPerJob else {
            throw BrokenRule(field: "frames", rule: "frames/chunk make \(chunks.count) tasks; at most \(Limits.tasksPerJob) per job")
        }
        // Bounded before it is expanded: what each task carries, the frame numbers counted at their widest.
        let widest = max(String(frames.ranges.map(\.lowerBound).min() ?? 0).count,
                         String(frames.ranges.map(\.upperBound).max() ?? 0).count)
        func size(_ text: String) -> Int {
            let marks = text.components(separatedBy: "{start}").count + text.components(separatedBy: "{end}").count - 2
            return text.utf8.count + marks * max(0, widest - 5)
        }
        let perTask = command.reduce(0) { $0 + size($1) } + env.reduce(0) { $0 + $1.key.utf8.count + size($1.value) } + 64
        let expanded = perTask * chunks.count
        guard expanded <= Limits.expandedJobBytes else {
            throw BrokenRule(field: "frames", rule: "frames/chunk make \(chunks.count) tasks of \(ByteSize.format(Int64(perTask))) each: "
                + "\(ByteSize.format(Int64(expanded))) in all, over the \(ByteSize.format(Int64(Limits.expandedJobBytes))) a job may expand to",
                isTooLarge: true)
        }
        return chunks.map { chunk in
            let substitute = { (arg: String) in
                arg.replacingOccurrences(of: "{start}", with: String(chunk.lowerBound))
                    .replacingOccurrences(of: "{end}", with: String(chunk.upperBound))
            }
            let name = chunk.count == 1 ? "frame \(chunk.lowerBound)" : "frames \(chunk.lowerBound)-\(chunk.upperBound)"
            var task = TaskSpec(name: name, command: command.map(substitute), env: env.mapValues(substitute), cwd: cwd)
            task.frames = chunk
            return task
        }
    }
}

extension WrittenJob {
    /// The job as the store takes it: every field checked against its rule (the first broken one
    /// is thrown, with its path), a frame template expanded, the dependency graph built. Pure.
    public func validated() throws(BrokenRule) -> ValidatedJob {
        try require(FieldRules.name(name), at: "name")
        if let owner { try require(FieldRules.owner(owner), at: "owner") }
        if let priority { try require(FieldRules.priority(priority), at: "priority") }
        try require(FieldRules.labels(labels), at: "labels")
        if let maxAttempts { try require(FieldRules.attempts(maxAttempts), at: "max_attempts") }
        if let timeout { try require(FieldRules.timeout(timeout), at: "timeout") }
        if let progressRegex { try require(FieldRules.progressRegex(progressRegex), at: "progress_regex") }
        try require(FieldRules.jobsAfter(after), at: "after")
        let tasks: [TaskSpec]
        switch work {
        case .tasks(let list):
            guard !list.isEmpty, list.count <= Limits.tasksPerJob else {
                throw BrokenRule(field: "tasks", rule: "a job has between 1 and \(Limits.tasksPerJob) tasks")
            }
            for (index, task) in list.enumerated() { try task.validate(at: index) }
            tasks = list
        case .frames(let template):
            tasks = try template.expanded()
        }
        let graph: DependencyGraph
        do { graph = try DependencyGraph(tasks: tasks) } catch {
            throw BrokenRule(field: "tasks", rule: error.description)
        }
        var submission = JobSubmission(name: name, owner: owner, priority: priority ?? 0, labels: labels,
                                       requirements: requirements, maxAttempts: maxAttempts, timeout: timeout, tasks: tasks)
        submission.after = after
        submission.progressRegex = progressRegex
        return ValidatedJob(submission: submission, graph: graph)
    }
}

extension JobSubmission {
    /// A job built in code (an Open Job Description conversion, a test) checked by the same rules
    /// as one decoded from a body.
    public func validated() throws(BrokenRule) -> ValidatedJob {
        try WrittenJob(self).validated()
    }
}
