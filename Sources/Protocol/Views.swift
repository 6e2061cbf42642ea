import Foundation

/// A page of a list: `{"items": [...], "next": cursor-or-null}`.
public struct Page<Item: Codable & Sendable>: Codable, Sendable {
    public var items: [Item]
    public var next: String?
    public init(items: [Item], next: String?) {
        self.items = items
        self.next = next
    }

    enum CodingKeys: String, CodingKey { case items, next }

    /// `next` is always present: `null` on the last page (a synthesized encoder would leave it out).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(items, forKey: .items)
        try c.encode(next, forKey: .next)
    }
}

public struct TaskCounts: Codable, Sendable, Equatable {
    public var byState: [TaskState: Int]
    public init(_ byState: [TaskState: Int]) { self.byState = byState }
    public var total: Int { byState.values.reduce(0, +) }
    public subscript(state: TaskState) -> Int { byState[state] ?? 0 }

    /// A state left out counts 0, as in `subscript` and on the wire (which always lists every state):
    /// `[.queued: 1]` equals `[.queued: 1, .failed: 0]`, so a count survives a round trip equal to itself.
    public static func == (lhs: TaskCounts, rhs: TaskCounts) -> Bool {
        TaskState.allCases.allSatisfy { lhs[$0] == rhs[$0] }
    }

    public init(from decoder: any Decoder) throws {
        let raw = try decoder.singleValueContainer().decode([String: Int].self)
        byState = Dictionary(uniqueKeysWithValues: raw.compactMap { key, value in
            TaskState(rawValue: key).map { ($0, value) }
        })
    }
    /// Every state, keyed by its name (written field by field: no dictionary is built and hashed
    /// for each job a listing shows).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: StateKey.self)
        for state in TaskState.allCases { try c.encode(self[state], forKey: StateKey(state)) }
    }

    private struct StateKey: CodingKey {
        let stringValue: String
        init(_ state: TaskState) { stringValue = state.rawValue }
        init?(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }
}

public struct JobView: Codable, Sendable {
    public var id: JobID
    public var name: String
    public var owner: String
    public var priority: Int
    public var labels: [String: String]
    public var state: JobState
    public var paused: Bool
    public var createdAt: Date
    public var counts: TaskCounts
    public var progress: Double
    /// Problems a user should see: tasks that fit no agent, and the like.
    public var warnings: [String]
    /// Present on `POST /v1/jobs` and `GET /v1/jobs/{id}` for small jobs; use `/v1/tasks?job=` to page.
    public var taskIDs: [TaskID]?
    /// Agents that get no more tasks of this job: its tasks failed on them too often (`GET /v1/jobs/{id}`).
    public var blocklist: [BlocklistEntry]?
    /// The expression its tasks' output is read with for progress, if it has one.
    public var progressRegex: String?
    public var href: String

    public init(id: JobID, name: String, owner: String, priority: Int, labels: [String: String], state: JobState,
                paused: Bool, createdAt: Date, counts: TaskCounts, progress: Double, warnings: [String],
                taskIDs: [TaskID]?) {
        self.id = id
        self.name = name
        self.owner = owner
        self.priority = priority
        self.labels = labels
        self.state = state
        self.paused = paused
        self.createdAt = createdAt
        self.counts = counts
        self.progress = progress
        self.warnings = warnings
        self.taskIDs = taskIDs
        self.href = APIPath.job(id)
    }

    enum CodingKeys: String, CodingKey {
        case id, name, owner, priority, labels, state, paused, counts, progress, warnings, href
        case createdAt = "created_at"
        case taskIDs = "task_ids"
        case blocklist
        case progressRegex = "progress_regex"
    }
}

/// `POST /v1/jobs` answered with `Prefer: return=minimal` (RFC 7240): what a submitter needs of the
/// job it made (its id, its tasks' ids, what it should see) without the rest of `JobView`. A script
/// that submits thousands of jobs saves the master an encode and itself a decode of each.
public struct JobCreated: Codable, Sendable, Equatable {
    public var id: JobID
    public var taskIDs: [TaskID]?
    public var warnings: [String]
    public var href: String

    public init(_ job: JobView) {
        id = job.id
        taskIDs = job.taskIDs
        warnings = job.warnings
        href = job.href
    }

    enum CodingKeys: String, CodingKey {
        case id, warnings, href
        case taskIDs = "task_ids"
    }
}

/// An agent kept away from a job's tasks, and how many of them failed on it.
public struct BlocklistEntry: Codable, Sendable, Equatable {
    public var agent: AgentID
    public var failures: Int
    public init(agent: AgentID, failures: Int) {
        self.agent = agent
        self.failures = failures
    }
}

public struct TaskEventView: Codable, Sendable {
    public var at: Date
    public var transition: TaskTransition
    public var from: TaskState
    public var to: TaskState
    public var agent: AgentID?
    public var epoch: LeaseEpoch
    public var reason: String?
    public init(at: Date, transition: TaskTransition, from: TaskState, to: TaskState, agent: AgentID?,
                epoch: LeaseEpoch, reason: String?) {
        self.at = at
        self.transition = transition
        self.from = from
        self.to = to
        self.agent = agent
        self.epoch = epoch
        self.reason = reason
    }
}

public struct TaskView: Codable, Sendable {
    public var id: TaskID
    public var jobID: JobID
    public var name: String
    public var command: [String]
    public var env: [String: String]
    public var cwd: String?
    public var requirements: TaskRequirements
    public var priority: Int
    public var timeout: Double?
    public var maxAttempts: Int
    /// Attempts used: runs that counted against `maxAttempts` (a release gives one back, a retry all).
    public var attempt: Int
    /// Every start of the task, never given back: the latest run's number (its log's key).
    public var runs: Int = 0
    public var state: TaskState
    public var agent: AgentID?
    public var epoch: LeaseEpoch
    public var progress: Double
    public var exitCode: Int?
    public var reason: String?
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    /// Set on a queued task that no enrolled agent could ever run (too big, or a tag nobody has).
    public var fitsNoAgent: Bool?
    /// What its latest run used: CPU seconds and peak RSS of its process tree (while it runs, so far).
    public var usage: TaskUsage?
    /// The frames it renders (`1-10`), when a frame-range template made it.
    public var frames: String?
    /// What its latest run last said it was doing (an `openjd_status: TEXT` line).
    public var status: String?
    /// Its parameter values (an Open Job Description task's), when it has any.
    public var parameters: [String: String]?
    public var history: [TaskEventView]?
    public var href: String

    public init(id: TaskID, jobID: JobID, name: String, command: [String], env: [String: String], cwd: String?,
                requirements: TaskRequirements, priority: Int, timeout: Double?, maxAttempts: Int, attempt: Int,
                state: TaskState, agent: AgentID?, epoch: LeaseEpoch, progress: Double, exitCode: Int?,
                reason: String?, createdAt: Date, startedAt: Date?, finishedAt: Date?) {
        self.id = id
        self.jobID = jobID
        self.name = name
        self.command = command
        self.env = env
        self.cwd = cwd
        self.requirements = requirements
        self.priority = priority
        self.timeout = timeout
        self.maxAttempts = maxAttempts
        self.attempt = attempt
        self.state = state
        self.agent = agent
        self.epoch = epoch
        self.progress = progress
        self.exitCode = exitCode
        self.reason = reason
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.href = APIPath.task(id)
    }

    enum CodingKeys: String, CodingKey {
        case id, name, command, env, cwd, requirements, priority, timeout, attempt, runs, state, agent, epoch
        case progress, reason, history, href
        case jobID = "job_id"
        case maxAttempts = "max_attempts"
        case exitCode = "exit_code"
        case createdAt = "created_at"
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case fitsNoAgent = "fits_no_agent"
        case usage, frames, status, parameters
    }

    /// Every field of the task is present, `null` when unset (`agent` and `exit_code` are part of
    /// the public contract, so clients may read them on a queued task too); only `fits_no_agent`
    /// and `history` are left out when the answer does not carry them.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(jobID, forKey: .jobID)
        try c.encode(name, forKey: .name)
        try c.encode(command, forKey: .command)
        try c.encode(env, forKey: .env)
        try c.encode(cwd, forKey: .cwd)
        try c.encode(requirements, forKey: .requirements)
        try c.encode(priority, forKey: .priority)
        try c.encode(timeout, forKey: .timeout)
        try c.encode(maxAttempts, forKey: .maxAttempts)
        try c.encode(attempt, forKey: .attempt)
        try c.encode(runs, forKey: .runs)
        try c.encode(state, forKey: .state)
        try c.encode(agent, forKey: .agent)
        try c.encode(epoch, forKey: .epoch)
        try c.encode(progress, forKey: .progress)
        try c.encode(exitCode, forKey: .exitCode)
        try c.encode(reason, forKey: .reason)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(startedAt, forKey: .startedAt)
        try c.encode(finishedAt, forKey: .finishedAt)
        try c.encodeIfPresent(fitsNoAgent, forKey: .fitsNoAgent)
        try c.encodeIfPresent(usage, forKey: .usage)
        try c.encodeIfPresent(frames, forKey: .frames)
        try c.encodeIfPresent(status, forKey: .status)
        try c.encodeIfPresent(parameters, forKey: .parameters)
        try c.encodeIfPresent(history, forKey: .history)
        try c.encode(href, forKey: .href)
    }
}

public struct AgentResources: Codable, Sendable, Equatable {
    public var total: ResourceVector
    public var free: ResourceVector
    public init(total: ResourceVector, free: ResourceVector) {
        self.total = total
        self.free = free
    }
}

public struct AgentView: Codable, Sendable {
    public var id: AgentID
    public var name: String
    public var state: AgentState
    public var tags: [String]
    public var resources: AgentResources
    public var runningTasks: [TaskID]
    public var version: String
    public var enrolledAt: Date
    public var lastSeen: Date
    /// The latest host sample it sent.
    public var metrics: HostMetrics?
    /// How many exceptions it reported (listed at `/v1/agents/{id}/exceptions`).
    public var exceptions: Int = 0
    /// The network address the answering master last saw it call from (behind trusted proxies, the
    /// client address they forwarded). Set by the master, never by the agent; informational only.
    public var address: String?
    public var href: String

    public init(id: AgentID, name: String, state: AgentState, tags: [String], resources: AgentResources,
                runningTasks: [TaskID], version: String, enrolledAt: Date, lastSeen: Date) {
        self.id = id
        self.name = name
        self.state = state
        self.tags = tags
        self.resources = resources
        self.runningTasks = runningTasks
        self.version = version
        self.enrolledAt = enrolledAt
        self.lastSeen = lastSeen
        self.href = APIPath.agent(id)
    }

    enum CodingKeys: String, CodingKey {
        case id, name, state, tags, resources, version, href
        case metrics, exceptions, address
        case runningTasks = "tasks"
        case enrolledAt = "enrolled_at"
        case lastSeen = "last_seen"
    }
}
