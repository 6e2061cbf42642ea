import Foundation

/// The body of `POST /v1/jobs` as its author wrote it: decoded strictly (unknown keys refused,
/// every value of its kind, sizes, durations and frame ranges read from their notation) and not
/// yet checked against any rule. `validated()` (JobValidation.swift) checks it and expands it.
public struct WrittenJob: Sendable, Equatable {
    public var name: String
    public var owner: String?
    public var priority: Int?
    public var labels: [String: String]
    public var requirements: TaskRequirements?
    public var maxAttempts: Int?
    public var timeout: Double?
    public var after: [JobID]
    public var progressRegex: String?
    public var work: Work

    /// What the job runs: a task list, or a frame-range template.
    public enum Work: Sendable, Equatable {
        case tasks([TaskSpec])
        case frames(FrameTemplate)
    }

    /// A job built in code, to be checked like a written one.
    public init(_ job: JobSubmission) {
        name = job.name
        owner = job.owner
        priority = job.priority
        labels = job.labels
        requirements = job.requirements
        maxAttempts = job.maxAttempts
        timeout = job.timeout
        after = job.after
        progressRegex = job.progressRegex
        work = .tasks(job.tasks)
    }
}

/// `frames: 1-250, chunk: 10` with a `command` (and `env`, `cwd`) in which `{start}` and `{end}`
/// stand for each chunk's first and last frame: 25 tasks.
public struct FrameTemplate: Sendable, Equatable {
    public var frames: FrameRange
    public var chunk: Int
    public var command: [String]
    public var env: [String: String]
    public var cwd: String?
}

extension WrittenJob: Decodable {
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
        name = try c.decode(String.self, forKey: .name)
        owner = try c.decodeIfPresent(String.self, forKey: .owner)
        priority = try c.decodeWholeNumberIfPresent(Int.self, forKey: .priority)
        labels = try c.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
        requirements = try c.decodeIfPresent(TaskRequirements.self, forKey: .requirements)
        maxAttempts = try c.decodeWholeNumberIfPresent(Int.self, forKey: .maxAttempts)
        timeout = try c.decodeDurationIfPresent(forKey: .timeout)
        after = try c.decodeIfPresent([JobID].self, forKey: .after) ?? []
        progressRegex = try c.decodeIfPresent(String.self, forKey: .progressRegex)
        switch (c.contains(.tasks), c.contains(.frames)) {
        case (true, false):
            for key in [CodingKeys.chunk, .command, .env, .cwd] where c.contains(key) {
                throw DecodingError.dataCorruptedError(forKey: key, in: c,
                    debugDescription: "'\(key.stringValue)' belongs to a frame-range template, not to a job with a task list")
            }
            work = .tasks(try Self.decodeTasks(c))
        case (false, true):
            guard let frames = FrameRange(try c.decode(String.self, forKey: .frames)) else {
                throw DecodingError.dataCorruptedError(forKey: .frames, in: c,
                    debugDescription: "frames must look like \"1-250\" (or \"1-10,20-30\")")
            }
            work = .frames(FrameTemplate(frames: frames,
                                         chunk: try c.decodeWholeNumberIfPresent(Int.self, forKey: .chunk) ?? 1,
                                         command: try c.decode([String].self, forKey: .command),
                                         env: try c.decodeIfPresent([String: String].self, forKey: .env) ?? [:],
                                         cwd: try c.decodeIfPresent(String.self, forKey: .cwd)))
        case (true, true):
            throw DecodingError.dataCorruptedError(forKey: .frames, in: c,
                debugDescription: "give either 'tasks' or a 'frames' template, not both")
        case (false, false):
            throw DecodingError.keyNotFound(CodingKeys.tasks, .init(codingPath: c.codingPath,
                debugDescription: "a job needs 'tasks' (a list) or 'frames' with a 'command'"))
        }
    }

    /// The task list, each task decoded as written (its rules are the job's validation's).
    static func decodeTasks(_ c: KeyedDecodingContainer<CodingKeys>) throws -> [TaskSpec] {
        var list = try c.nestedUnkeyedContainer(forKey: .tasks)
        var tasks: [TaskSpec] = []
        tasks.reserveCapacity(min(list.count ?? 0, Limits.tasksPerJob + 1))
        while !list.isAtEnd { tasks.append(try list.decode(WrittenTask.self).task) }
        return tasks
    }
}

/// A task in a job's list: decoded as written, checked later with the rest of the job.
private struct WrittenTask: Decodable {
    let task: TaskSpec
    init(from decoder: any Decoder) throws { task = try TaskSpec(writtenFrom: decoder) }
}
