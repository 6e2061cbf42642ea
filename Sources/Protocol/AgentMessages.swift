import Foundation

/// `POST /v1/agents` with a join token.
public struct EnrollRequest: Codable, Sendable {
    public var name: String
    public var resources: ResourceVector
    public var tags: [String]
    public var version: String
    /// The credential the agent holds under this name, if any: enrolling under a name an enrolled
    /// agent holds needs it (or an admin's `paddock agent reset NAME`).
    public var credential: String?

    public init(name: String, resources: ResourceVector, tags: [String], version: String, credential: String? = nil) {
        self.name = name
        self.resources = resources
        self.tags = tags
        self.version = version
        self.credential = credential
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case name, resources, tags, version, credential }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        resources = try c.decode(ResourceVector.self, forKey: .resources)
        tags = try c.decodeIfPresent([String].self, forKey: .tags) ?? []
        version = String(try c.decodeIfPresent(String.self, forKey: .version)?.prefix(64) ?? "unknown")
        credential = try c.decodeIfPresent(String.self, forKey: .credential)
        try decoder.validate(self)
        tags = TaskRequirements.tagSet(tags)
    }
}

extension EnrollRequest: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) {
        try require(FieldRules.agentName(name), at: "name")
        try require(FieldRules.tags(tags), at: "tags")
        if let credential { try require(credential.utf8.count <= 512 ? nil : "a credential is at most 512 bytes", at: "credential") }
    }
}

public struct EnrollResponse: Codable, Sendable {
    public var id: AgentID
    /// The agent's own secret: every later call carries it as a bearer token.
    public var credential: String
    public var leaseTimeout: Double
    public var heartbeatInterval: Double

    public init(id: AgentID, credential: String, leaseTimeout: Double, heartbeatInterval: Double) {
        self.id = id
        self.credential = credential
        self.leaseTimeout = leaseTimeout
        self.heartbeatInterval = heartbeatInterval
    }

    enum CodingKeys: String, CodingKey {
        case id, credential
        case leaseTimeout = "lease_timeout"
        case heartbeatInterval = "heartbeat_interval"
    }
}

/// A task lease an agent holds: the task and the epoch it was given under.
public struct HeldLease: Codable, Sendable, Hashable {
    public var task: TaskID
    public var epoch: LeaseEpoch
    public init(task: TaskID, epoch: LeaseEpoch) {
        self.task = task
        self.epoch = epoch
    }
    enum CodingKeys: String, CodingKey, CaseIterable { case task, epoch }
    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        task = try c.decode(TaskID.self, forKey: .task)
        epoch = try c.decode(LeaseEpoch.self, forKey: .epoch)
    }
}

/// `PUT /v1/agents/{id}/heartbeat`.
public struct HeartbeatRequest: Codable, Sendable {
    /// The leases the agent holds: renewed.
    public var held: [HeldLease]
    /// `held` is everything the agent holds: any other task leased to it is gone (it restarted, or is
    /// leaving) and goes back to the queue at once instead of after the lease timeout.
    public var authoritative: Bool
    /// The agent is shutting down: it is marked offline and is handed no more work.
    public var leaving: Bool
    /// A sample of the host (CPU, load, memory, disk, GPUs).
    public var metrics: HostMetrics?
    /// What each running task's process group uses.
    public var usage: [TaskUsageReport]
    /// Every exchange of this agent process numbered up to this one (`ExchangeRequest.number`) was
    /// answered, or failed, before `held` was taken: a lease one of them granted that `held` lacks
    /// never reached the agent (its answer was lost with a connection or a master), and goes back
    /// to the queue at once, no attempt used, instead of when its lease times out.
    public var answered: ExchangeNumber?

    public init(held: [HeldLease], authoritative: Bool = false, leaving: Bool = false, metrics: HostMetrics? = nil,
                usage: [TaskUsageReport] = [], answered: ExchangeNumber? = nil) {
        self.held = held
        self.authoritative = authoritative
        self.leaving = leaving
        self.metrics = metrics
        self.usage = usage
        self.answered = answered
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case held, authoritative, leaving, metrics, usage, answered }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        authoritative = try c.decodeIfPresent(Bool.self, forKey: .authoritative) ?? false
        leaving = try c.decodeIfPresent(Bool.self, forKey: .leaving) ?? false
        // A sample the master cannot read costs the sample, never the heartbeat (leases must renew).
        metrics = (try? c.decodeIfPresent(HostMetrics.self, forKey: .metrics)) ?? nil
        usage = ((try? c.decodeIfPresent([TaskUsageReport].self, forKey: .usage)) ?? nil).map { Array($0.prefix(4 * Limits.claimSlots)) } ?? []
        held = try c.decodeIfPresent([HeldLease].self, forKey: .held) ?? []
        answered = try c.decodeIfPresent(ExchangeNumber.self, forKey: .answered)
        try decoder.validate(self)
    }
}

extension HeartbeatRequest: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) {
        try require(held.count <= 4 * Limits.claimSlots ? nil : "too many held leases", at: "held")
    }
}

/// One running task's use of the host, on a heartbeat.
public struct TaskUsageReport: Codable, Sendable, Equatable {
    public var task: TaskID
    public var epoch: LeaseEpoch
    public var usage: TaskUsage
    public init(task: TaskID, epoch: LeaseEpoch, usage: TaskUsage) {
        self.task = task
        self.epoch = epoch
        self.usage = usage
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case task, epoch, usage }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        task = try c.decode(TaskID.self, forKey: .task)
        epoch = try c.decode(LeaseEpoch.self, forKey: .epoch)
        usage = try c.decode(TaskUsage.self, forKey: .usage)
    }
}

public struct HeartbeatResponse: Codable, Sendable {
    public var state: AgentState
    /// Leases the agent reported that no longer count (expired, stolen, cancelled): it should stop them.
    public var lost: [HeldLease]
    public var leaseTimeout: Double
    public var heartbeatInterval: Double
    public init(state: AgentState, lost: [HeldLease], leaseTimeout: Double, heartbeatInterval: Double) {
        self.state = state
        self.lost = lost
        self.leaseTimeout = leaseTimeout
        self.heartbeatInterval = heartbeatInterval
    }
    enum CodingKeys: String, CodingKey {
        case state, lost
        case leaseTimeout = "lease_timeout"
        case heartbeatInterval = "heartbeat_interval"
    }
}

/// `POST /v1/agents/{id}/claim`: give me up to `slots` tasks that fit; wait up to `wait` seconds if none does.
public struct ClaimRequest: Codable, Sendable {
    public var slots: Int
    public var wait: Double
    /// What the agent itself sees free; the master also counts what it has leased to it and uses the tighter.
    public var free: ResourceVector?
    /// How many more assigned-but-not-started tasks the agent would hold beyond what fits now
    /// (hides claim latency for short tasks; other agents may steal them).
    public var prefetch: Int
    /// How many tasks the agent runs at most (its slots, busy or not). With it the master counts the
    /// agent's busy slots itself, so that two claims in flight at once never hand out more than that.
    public var capacity: Int?

    public init(slots: Int, wait: Double, free: ResourceVector? = nil, prefetch: Int = 0, capacity: Int? = nil) {
        self.capacity = capacity
        self.slots = slots
        self.wait = wait
        self.free = free
        self.prefetch = prefetch
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case slots, wait, free, prefetch, capacity }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        slots = try c.decodeWholeNumberIfPresent(Int.self, forKey: .slots) ?? 1
        prefetch = try c.decodeWholeNumberIfPresent(Int.self, forKey: .prefetch) ?? 0
        wait = try c.decodeIfPresent(Double.self, forKey: .wait) ?? 0
        free = try c.decodeIfPresent(ResourceVector.self, forKey: .free)
        capacity = try c.decodeWholeNumberIfPresent(Int.self, forKey: .capacity)
        try decoder.validate(self)
    }
}

extension ClaimRequest: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) {
        let room = 0...Limits.claimSlots
        try require(room.contains(slots) && room.contains(prefetch) && slots + prefetch >= 1 ? nil
                    : "slots and prefetch are between 0 and \(Limits.claimSlots), together at least 1", at: "slots")
        try require(FieldRules.longPollWait(wait), at: "wait")
        if let capacity { try require(room.contains(capacity) ? nil : "capacity is between 0 and \(Limits.claimSlots)", at: "capacity") }
    }
}

/// One task handed to an agent, with everything needed to run it.
public struct TaskLease: Codable, Sendable {
    public var task: TaskID
    public var job: JobID
    public var name: String
    public var epoch: LeaseEpoch
    public var command: [String]
    public var env: [String: String]
    public var cwd: String?
    public var requirements: TaskRequirements
    public var timeout: Double?
    public var attempt: Int
    /// Handed out beyond what fits the agent now: it starts when room frees up (and may be stolen before).
    public var prefetched: Bool
    /// The job's progress expression, and the frames this task renders (`1-10`), if any.
    public var progressRegex: String?
    public var frames: String?

    public init(task: TaskID, job: JobID, name: String, epoch: LeaseEpoch, command: [String], env: [String: String],
                cwd: String?, requirements: TaskRequirements, timeout: Double?, attempt: Int, prefetched: Bool = false) {
        self.prefetched = prefetched
        self.task = task
        self.job = job
        self.name = name
        self.epoch = epoch
        self.command = command
        self.env = env
        self.cwd = cwd
        self.requirements = requirements
        self.timeout = timeout
        self.attempt = attempt
    }

    public var held: HeldLease { HeldLease(task: task, epoch: epoch) }

    enum CodingKeys: String, CodingKey {
        case task, job, name, epoch, command, env, cwd, requirements, timeout, attempt, prefetched, frames
        case progressRegex = "progress_regex"
    }
}

public struct ClaimResponse: Codable, Sendable {
    public var leases: [TaskLease]
    public init(leases: [TaskLease]) { self.leases = leases }
}

/// `POST /v1/tasks/{id}/start` and `/progress`.
public struct TaskReport: Codable, Sendable {
    public var epoch: LeaseEpoch
    public var progress: Double?
    public init(epoch: LeaseEpoch, progress: Double? = nil) {
        self.epoch = epoch
        self.progress = progress
    }
    enum CodingKeys: String, CodingKey, CaseIterable { case epoch, progress }
    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        epoch = try c.decode(LeaseEpoch.self, forKey: .epoch)
        progress = try c.decodeIfPresent(Double.self, forKey: .progress)
        try decoder.validate(self)
    }
}

extension TaskReport: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) {
        if let progress { try require(FieldRules.progress(progress), at: "progress") }
    }
}

/// How a run ended, as the agent saw it.
public enum TaskOutcome: String, Codable, Sendable {
    case succeeded
    case failed
    /// The agent gives the task back without it counting as an attempt (it is shutting down).
    case released
}

/// `POST /v1/tasks/{id}/finish`.
public struct FinishReport: Codable, Sendable, Equatable {
    public var epoch: LeaseEpoch
    public var outcome: TaskOutcome
    public var exitCode: Int?
    public var reason: String?
    /// What the run used over its life (CPU seconds, peak RSS), as last sampled.
    public var usage: TaskUsage?

    public init(epoch: LeaseEpoch, outcome: TaskOutcome, exitCode: Int?, reason: String? = nil, usage: TaskUsage? = nil) {
        self.epoch = epoch
        self.outcome = outcome
        self.exitCode = exitCode
        self.reason = reason
        self.usage = usage
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case epoch, outcome, reason, usage
        case exitCode = "exit_code"
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        epoch = try c.decode(LeaseEpoch.self, forKey: .epoch)
        outcome = try c.decode(TaskOutcome.self, forKey: .outcome)
        exitCode = try c.decodeWholeNumberIfPresent(Int.self, forKey: .exitCode)
        reason = try c.decodeIfPresent(String.self, forKey: .reason).map { String($0.prefix(1024)) }
        usage = (try? c.decodeIfPresent(TaskUsage.self, forKey: .usage)) ?? nil
    }
}

/// The answer to a log upload: how many bytes of this run's log the master now holds.
public struct LogAck: Codable, Sendable {
    public var size: Int64
    public init(size: Int64) { self.size = size }
}
