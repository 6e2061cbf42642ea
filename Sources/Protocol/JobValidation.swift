import Foundation

/// A job that passed every rule: its tasks listed (a frame template expanded), the dependencies
/// among them resolved once. Only validation makes one; it is what the store takes.
public struct ValidatedJob: Sendable {
    public let submission: JobSubmission
    /// `submission.tasks`' dependencies, by index: the store inserts these edges as they are.
    public let graph: DependencyGraph
}

extension TaskSpec: ValidatedAfterDecoding {
    /// Checks a task on its own: paths from the task (`env`).
    public func validate() throws(BrokenRule) { try check { $0 } }

    /// Checks the task at `index` of a job's list: paths from the job (`tasks[3].env`).
    public func validate(asTaskAt index: Int) throws(BrokenRule) { try check { "tasks[\(index)].\($0)" } }

    private func check(_ path: (String) -> String) throws(BrokenRule) {
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
                // Most arguments hold no placeholder: kept as they are, not searched twice.
                guard arg.utf8.contains(UInt8(ascii: "{")) else { return arg }
                return arg.replacingOccurrences(of: "{start}", with: String(chunk.lowerBound))
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
            for (index, task) in list.enumerated() { try task.validate(asTaskAt: index) }
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
