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

    /// A task decoded on its own and checked (its fields' paths start at the task). In a job's
    /// list a task is decoded as written (`init(writtenFrom:)`) and checked with the job.
    public init(from decoder: any Decoder) throws {
        try self.init(writtenFrom: decoder)
        try decoder.validate(self)
    }

    /// The task as written: strict keys and kinds, no rule checked.
    init(writtenFrom decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        command = try c.decode([String].self, forKey: .command)
        env = try c.decodeIfPresent([String: String].self, forKey: .env) ?? [:]
        // `path_mapping: true`: the agent maps the task's cwd, command and env (kept in its env: no field of its own).
        if try c.decodeIfPresent(Bool.self, forKey: .pathMapping) == true { env[PathMappingEnvironment.optIn] = "true" }
        cwd = try c.decodeIfPresent(String.self, forKey: .cwd)
        requirements = try c.decodeIfPresent(TaskRequirements.self, forKey: .requirements)
        maxAttempts = try c.decodeWholeNumberIfPresent(Int.self, forKey: .maxAttempts)
        timeout = try c.decodeDurationIfPresent(forKey: .timeout)
        priority = try c.decodeWholeNumberIfPresent(Int.self, forKey: .priority)
        dependsOn = try c.decodeIfPresent([String].self, forKey: .dependsOn) ?? []
        if let text = try c.decodeIfPresent(String.self, forKey: .frames) {
            guard let range = FrameRange(text), range.ranges.count == 1, let only = range.ranges.first else {
                throw DecodingError.dataCorruptedError(forKey: .frames, in: c, debugDescription: "a task's frames look like \"1-10\"")
            }
            frames = only
        }
        parameters = try c.decodeIfPresent([String: String].self, forKey: .parameters) ?? [:]
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
    enum CodingKeys: String, CodingKey {
        case name, owner, priority, labels, requirements, timeout, tasks
        case maxAttempts = "max_attempts"
        case after
        case progressRegex = "progress_regex"
    }

    /// The job as the master would store it: decoded as written (`WrittenJob`), then validated and
    /// expanded. The master itself keeps the two steps apart, to keep the dependency graph the
    /// validation built (`ValidatedJob`).
    public init(from decoder: any Decoder) throws {
        let written = try WrittenJob(from: decoder)
        do { self = try written.validated().submission } catch { throw error.decodingError(at: decoder.codingPath) }
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
}

/// `1-250`, `1-10,20-30`, `7`: the frames a render job covers.
public struct FrameRange: Sendable, Equatable {
    public let ranges: [ClosedRange<Int>]

    public init?(_ text: String) {
        var ranges: [ClosedRange<Int>] = []
        guard text.count <= 1024 else { return nil }
        for part in text.split(separator: ",") {
            let bounds = part.trimmingSpaces.split(separator: "-", omittingEmptySubsequences: false)
            let numbers = bounds.compactMap { Int($0.trimmingSpaces) }
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
