import Foundation

/// One task as a user writes it in a job file.
public struct TaskSpec: Sendable, Equatable {
    public var name: String
    public var command: [String]
    public var env: [String: String]
    public var cwd: String?
    public var requirements: TaskRequirements?
    public var maxAttempts: Int?
    public var timeout: Double?
    public var priority: Int?
    /// Names of tasks of the same job that must succeed before this one is queued.
    public var dependsOn: [String]
    /// The frames this task renders (set by a frame-range template): a job's `progress_regex`
    /// capturing a frame number turns into progress against them.
    public var frames: ClosedRange<Int>?
    /// The task's parameter values (an Open Job Description task's, one element of its step's
    /// parameter space), shown in its view; they change nothing in how it runs.
    public var parameters: [String: String] = [:]

    public init(name: String, command: [String], env: [String: String] = [:], cwd: String? = nil,
                requirements: TaskRequirements? = nil, maxAttempts: Int? = nil, timeout: Double? = nil,
                priority: Int? = nil, dependsOn: [String] = []) {
        self.dependsOn = dependsOn
        self.name = name
        self.command = command
        self.env = env
        self.cwd = cwd
        self.requirements = requirements
        self.maxAttempts = maxAttempts
        self.timeout = timeout
        self.priority = priority
    }
}

extension TaskSpec: Codable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, command, env, cwd, requirements, priority, timeout
        case maxAttempts = "max_attempts"
        case dependsOn = "depends_on"
        case frames
        case pathMapping = "path_mapping"
        case parameters
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try JobSubmission.decodeName(c, .name)
        command = try JobSubmission.decodeCommand(c, .command)
        env = try JobSubmission.decodeEnv(c, .env)
        // `path_mapping: true`: the agent maps the task's cwd, command and env (kept in its env: no field of its own).
        if try c.decodeIfPresent(Bool.self, forKey: .pathMapping) == true { env[PathMappingEnvironment.optIn] = "true" }
        cwd = try JobSubmission.decodePath(c, .cwd)
        requirements = try c.decodeIfPresent(TaskRequirements.self, forKey: .requirements)
        maxAttempts = try JobSubmission.decodeAttempts(c, .maxAttempts)
        timeout = try JobSubmission.decodeTimeout(c, .timeout)
        priority = try JobSubmission.decodePriority(c, .priority)
        dependsOn = try c.decodeIfPresent([String].self, forKey: .dependsOn) ?? []
        if let text = try c.decodeIfPresent(String.self, forKey: .frames) {
            guard let range = FrameRange(text), range.ranges.count == 1, let only = range.ranges.first else {
                throw DecodingError.dataCorruptedError(forKey: .frames, in: c, debugDescription: "a task's frames look like \"1-10\"")
            }
            frames = only
        }
        guard dependsOn.count <= 1000 else {
            throw DecodingError.dataCorruptedError(forKey: .dependsOn, in: c, debugDescription: "at most 1000 dependencies")
        }
        parameters = try Self.decodeParameters(c, .parameters)
    }

    /// At most `Limits.taskParameters` names of 1 to 64 characters, each value at most
    /// `Limits.taskParameterValue` bytes.
    static func decodeParameters<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) throws -> [String: String] {
        let parameters = try c.decodeIfPresent([String: String].self, forKey: key) ?? [:]
        guard parameters.count <= Limits.taskParameters,
              parameters.allSatisfy({ (1...64).contains($0.key.count) && $0.value.utf8.count <= Limits.taskParameterValue
                  && !$0.key.contains("\0") && !$0.value.contains("\0") })
        else {
            throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription:
                "parameters maps at most \(Limits.taskParameters) names (1 to 64 characters) to values of at most \(Limits.taskParameterValue) bytes")
        }
        return parameters
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(command, forKey: .command)
        if !env.isEmpty { try c.encode(env, forKey: .env) }
        try c.encodeIfPresent(cwd, forKey: .cwd)
        try c.encodeIfPresent(requirements, forKey: .requirements)
        try c.encodeIfPresent(maxAttempts, forKey: .maxAttempts)
        try c.encodeIfPresent(timeout, forKey: .timeout)
        try c.encodeIfPresent(priority, forKey: .priority)
        if !dependsOn.isEmpty { try c.encode(dependsOn, forKey: .dependsOn) }
        if let frames { try c.encode("\(frames.lowerBound)-\(frames.upperBound)", forKey: .frames) }
        if !parameters.isEmpty { try c.encode(parameters, forKey: .parameters) }
    }
}

/// `POST /v1/jobs`: either an explicit task list, or a frame-range template
/// (`frames: 1-250, chunk: 10` → 25 tasks with `{start}`/`{end}` substituted).
public struct JobSubmission: Sendable, Equatable {
    public var name: String
    public var owner: String?
    public var priority: Int
    public var labels: [String: String]
    /// Defaults for tasks that give none of their own.
    public var requirements: TaskRequirements?
    public var maxAttempts: Int?
    public var timeout: Double?
    public var tasks: [TaskSpec]
    /// Jobs that must succeed before any task of this one is queued.
    public var after: [JobID] = []
    /// A regular expression whose first group captures a frame number (Blender's `Fra:(\d+)`) or a
    /// percentage, read on each output line to set the task's progress.
    public var progressRegex: String?

    public init(name: String, owner: String? = nil, priority: Int = 0, labels: [String: String] = [:],
                requirements: TaskRequirements? = nil, maxAttempts: Int? = nil, timeout: Double? = nil,
                tasks: [TaskSpec]) {
        self.name = name
        self.owner = owner
        self.priority = priority
        self.labels = labels
        self.requirements = requirements
        self.maxAttempts = maxAttempts
        self.timeout = timeout
        self.tasks = tasks
    }

    public static let defaultMaxAttempts = 3

    /// The requirements a task runs with: its own, else the job's, else one CPU.
    public func effectiveRequirements(of task: TaskSpec) -> TaskRequirements {
        task.requirements ?? requirements ?? .default
    }
}

extension JobSubmission: Codable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, owner, priority, labels, requirements, timeout, tasks
        case maxAttempts = "max_attempts"
        case after
        case progressRegex = "progress_regex"
        // the frame-range template
        case frames, chunk, command, env, cwd
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try Self.decodeName(c, .name)
        owner = try c.decodeIfPresent(String.self, forKey: .owner)
        if let owner, owner.count > Limits.nameLength || !owner.isSafeToken {
            throw DecodingError.dataCorruptedError(forKey: .owner, in: c,
                debugDescription: "owner must be letters, digits and -_.: (≤ \(Limits.nameLength) chars)")
        }
        priority = try Self.decodePriority(c, .priority) ?? 0
        labels = try c.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
        guard labels.count <= Limits.labelCount,
              labels.allSatisfy({ $0.key.count <= Limits.tagLength && $0.key.isSafeToken && $0.value.count <= Limits.nameLength })
        else {
            throw DecodingError.dataCorruptedError(forKey: .labels, in: c,
                debugDescription: "at most \(Limits.labelCount) labels; keys of letters, digits and -_.:")
        }
        requirements = try c.decodeIfPresent(TaskRequirements.self, forKey: .requirements)
        maxAttempts = try Self.decodeAttempts(c, .maxAttempts)
        timeout = try Self.decodeTimeout(c, .timeout)
        after = try c.decodeIfPresent([JobID].self, forKey: .after) ?? []
        progressRegex = try c.decodeIfPresent(String.self, forKey: .progressRegex)
        if let pattern = progressRegex, ProgressLine.Pattern(pattern) == nil {
            throw DecodingError.dataCorruptedError(forKey: .progressRegex, in: c,
                debugDescription: "progress_regex is a regular expression (≤ 256 characters) with one capture group")
        }
        guard after.count <= 1000 else {
            throw DecodingError.dataCorruptedError(forKey: .after, in: c, debugDescription: "at most 1000 jobs in 'after'")
        }

        let hasTasks = c.contains(.tasks)
        let hasFrames = c.contains(.frames)
        switch (hasTasks, hasFrames) {
        case (true, false):
            for key in [CodingKeys.chunk, .command, .env, .cwd] where c.contains(key) {
                throw DecodingError.dataCorruptedError(forKey: key, in: c,
                    debugDescription: "'\(key.stringValue)' belongs to a frame-range template, not to a job with a task list")
            }
            tasks = try c.decode([TaskSpec].self, forKey: .tasks)
        case (false, true):
            let frames = try c.decode(String.self, forKey: .frames)
            guard let range = FrameRange(frames) else {
                throw DecodingError.dataCorruptedError(forKey: .frames, in: c,
                    debugDescription: "frames must look like \"1-250\" (or \"1-10,20-30\")")
            }
            let chunk = try c.decodeWholeNumberIfPresent(Int.self, forKey: .chunk) ?? 1
            guard chunk >= 1, chunk <= 1_000_000 else {
                throw DecodingError.dataCorruptedError(forKey: .chunk, in: c, debugDescription: "chunk must be ≥ 1")
            }
            let command = try Self.decodeCommand(c, .command)
            let env = try Self.decodeEnv(c, .env)
            let cwd = try Self.decodePath(c, .cwd)
            let chunks = range.chunks(of: chunk)
            guard chunks.count <= Limits.tasksPerJob else {
                throw DecodingError.dataCorruptedError(forKey: .frames, in: c,
                    debugDescription: "frames/chunk make \(chunks.count) tasks; at most \(Limits.tasksPerJob) per job")
            }
            // Bounded before it is expanded: what each task carries, the frame numbers counted at their widest.
            let widest = max(String(range.ranges.map(\.lowerBound).min() ?? 0).count,
                             String(range.ranges.map(\.upperBound).max() ?? 0).count)
            func size(_ text: String) -> Int {
                let marks = text.components(separatedBy: "{start}").count + text.components(separatedBy: "{end}").count - 2
                return text.utf8.count + marks * max(0, widest - 5)
            }
            let perTask = command.reduce(0) { $0 + size($1) } + env.reduce(0) { $0 + $1.key.utf8.count + size($1.value) } + 64
            let expanded = perTask * chunks.count
            guard expanded <= Limits.expandedJobBytes else {
                throw PaddockError.tooLarge("frames/chunk make \(chunks.count) tasks of \(ByteSize.format(Int64(perTask))) each: "
                    + "\(ByteSize.format(Int64(expanded))) in all, over the \(ByteSize.format(Int64(Limits.expandedJobBytes))) a job may expand to")
            }
            tasks = chunks.map { chunk in
                let substitute = { (arg: String) in
                    arg.replacingOccurrences(of: "{start}", with: String(chunk.lowerBound))
                        .replacingOccurrences(of: "{end}", with: String(chunk.upperBound))
                }
                let name = chunk.count == 1 ? "frame \(chunk.lowerBound)" : "frames \(chunk.lowerBound)-\(chunk.upperBound)"
                var task = TaskSpec(name: name, command: command.map(substitute), env: env.mapValues(substitute), cwd: cwd)
                task.frames = chunk
                return task
            }
        case (true, true):
            throw DecodingError.dataCorruptedError(forKey: .frames, in: c,
                debugDescription: "give either 'tasks' or a 'frames' template, not both")
        case (false, false):
            throw DecodingError.keyNotFound(CodingKeys.tasks, .init(codingPath: c.codingPath,
                debugDescription: "a job needs 'tasks' (a list) or 'frames' with a 'command'"))
        }
        guard !tasks.isEmpty, tasks.count <= Limits.tasksPerJob else {
            throw DecodingError.dataCorruptedError(forKey: .tasks, in: c,
                debugDescription: "a job has between 1 and \(Limits.tasksPerJob) tasks")
        }
        do {
            _ = try DependencyGraph(tasks: tasks)
        } catch {
            throw DecodingError.dataCorruptedError(forKey: .tasks, in: c, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encodeIfPresent(owner, forKey: .owner)
        try c.encode(priority, forKey: .priority)
        if !labels.isEmpty { try c.encode(labels, forKey: .labels) }
        try c.encodeIfPresent(requirements, forKey: .requirements)
        try c.encodeIfPresent(maxAttempts, forKey: .maxAttempts)
        try c.encodeIfPresent(timeout, forKey: .timeout)
        try c.encode(tasks, forKey: .tasks)
        if !after.isEmpty { try c.encode(after, forKey: .after) }
        try c.encodeIfPresent(progressRegex, forKey: .progressRegex)
    }

    // MARK: field validation shared with TaskSpec

    static func decodeName<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) throws -> String {
        let name = try c.decode(String.self, forKey: key)
        guard !name.isEmpty, name.count <= Limits.nameLength, !name.contains(where: \.isNewline) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: c,
                debugDescription: "name must be 1 to \(Limits.nameLength) characters on one line")
        }
        return name
    }

    static func decodeCommand<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) throws -> [String] {
        let argv = try c.decode([String].self, forKey: key)
        guard let first = argv.first, !first.isEmpty else {
            throw DecodingError.dataCorruptedError(forKey: key, in: c,
                debugDescription: "command is an argv array with a program first, e.g. [\"echo\", \"hi\"]")
        }
        guard argv.count <= Limits.argvCount,
              argv.allSatisfy({ $0.utf8.count <= Limits.argLength && !$0.contains("\0") }) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: c,
                debugDescription: "command has at most \(Limits.argvCount) arguments of \(Limits.argLength) bytes, no NUL")
        }
        return argv
    }

    static func decodeEnv<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) throws -> [String: String] {
        let env = try c.decodeIfPresent([String: String].self, forKey: key) ?? [:]
        let validName = { (name: String) in
            !name.isEmpty && name.count <= 256 && !(name.first?.isNumber ?? true)
                && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
        }
        guard env.count <= Limits.envCount,
              env.allSatisfy({ validName($0.key) && $0.value.utf8.count <= Limits.envValueLength && !$0.value.contains("\0") })
        else {
            throw DecodingError.dataCorruptedError(forKey: key, in: c,
                debugDescription: "env maps names ([A-Za-z_][A-Za-z0-9_]*) to values; at most \(Limits.envCount)")
        }
        return env
    }

    static func decodePath<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) throws -> String? {
        guard let path = try c.decodeIfPresent(String.self, forKey: key) else { return nil }
        guard path.hasPrefix("/"), path.utf8.count <= Limits.pathLength, !path.contains("\0") else {
            throw DecodingError.dataCorruptedError(forKey: key, in: c,
                debugDescription: "\(key.stringValue) must be an absolute path")
        }
        return path
    }

    static func decodeAttempts<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) throws -> Int? {
        guard let value = try c.decodeWholeNumberIfPresent(Int.self, forKey: key) else { return nil }
        guard (1...Limits.maxAttempts).contains(value) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: c,
                debugDescription: "max_attempts must be between 1 and \(Limits.maxAttempts)")
        }
        return value
    }

    static func decodeTimeout<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) throws -> Double? {
        guard c.contains(key), try !c.decodeNil(forKey: key) else { return nil }
        let seconds: Double?
        if let number = try? c.decode(Double.self, forKey: key) {
            seconds = number.isFinite && number > 0 && number <= DurationText.maximumSeconds ? number : nil
        } else if let text = try? c.decode(String.self, forKey: key) {
            seconds = DurationText.parse(text).flatMap { $0 > 0 ? $0 : nil }
        } else {
            seconds = nil
        }
        guard let seconds else {
            throw DecodingError.dataCorruptedError(forKey: key, in: c,
                debugDescription: "timeout is a positive duration such as 90, \"30s\" or \"2h\" (≤ 30 days)")
        }
        return seconds
    }

    static func decodePriority<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) throws -> Int? {
        guard let value = try c.decodeWholeNumberIfPresent(Int.self, forKey: key) else { return nil }
        guard Limits.priorityRange.contains(value) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: c,
                debugDescription: "priority must be between \(Limits.priorityRange.lowerBound) and \(Limits.priorityRange.upperBound)")
        }
        return value
    }
}

/// `1-250`, `1-10,20-30`, `7`: the frames a render job covers.
public struct FrameRange: Sendable, Equatable {
    public let ranges: [ClosedRange<Int>]

    public init?(_ text: String) {
        var ranges: [ClosedRange<Int>] = []
        guard text.count <= 1024 else { return nil }
        for part in text.split(separator: ",") {
            let bounds = part.trimmingCharacters(in: .whitespaces).split(separator: "-", omittingEmptySubsequences: false)
            let numbers = bounds.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard numbers.count == bounds.count, (1...2).contains(numbers.count),
                  numbers.allSatisfy({ abs($0) <= 100_000_000 }) else { return nil }
            // Check the order before forming the range: `5...1` traps (a "5-1" in a job file must be a 400, not a crash).
            guard let first = numbers.first, let last = numbers.last, first <= last else { return nil }
            ranges.append(first...last)
        }
        guard !ranges.isEmpty else { return nil }
        self.ranges = ranges
    }

    /// Consecutive chunks of at most `size` frames (at least one), never spanning two ranges.
    public func chunks(of size: Int) -> [ClosedRange<Int>] {
        // A size below 1 would loop forever and a huge one would overflow `start + size - 1`.
        let size = Swift.max(size, 1)
        var result: [ClosedRange<Int>] = []
        for range in ranges {
            var start = range.lowerBound
            while start <= range.upperBound {
                let end = size - 1 < range.upperBound - start ? start + (size - 1) : range.upperBound
                result.append(start...end)
                if result.count > Limits.tasksPerJob { return result }
                start = end + 1
            }
        }
        return result
    }
}
