import Foundation
import PaddockProtocol

public struct JobFilter: Sendable {
    public var state: JobState?
    public var owner: String?
    public var label: (key: String, value: String)?
    /// Archived (deleted) jobs are listed only when asked for.
    public var archived = false
    public init(state: JobState? = nil, owner: String? = nil, label: (key: String, value: String)? = nil) {
        self.state = state
        self.owner = owner
        self.label = label
    }
}

public struct TaskFilter: Sendable {
    public var job: JobID?
    public var state: TaskState?
    public var agent: AgentID?
    public init(job: JobID? = nil, state: TaskState? = nil, agent: AgentID? = nil) {
        self.job = job
        self.state = state
        self.agent = agent
    }
}

/// Keyset paging: `after` is the last id of the previous page (the `next` cursor).
public struct PageRequest: Sendable {
    public var after: Int64
    public var limit: Int
    public init(after: Int64 = 0, limit: Int = Limits.pageSize) {
        self.after = after
        self.limit = limit
    }
}

/// Part of one run's log, from a stored offset on.
public struct LogPage: Sendable {
    public var chunks: [Data]
    /// The run (attempt) this log belongs to.
    public var attempt: Int
    /// The run is still going (more output may come).
    public var live: Bool
}

public struct FarmSummary: Sendable {
    public var jobs: Int
    public var tasks: [TaskState: Int]
    public var agents: [AgentState: Int]
}

/// An agent as the auth layer needs it.
public struct AgentIdentity: Sendable, Equatable {
    public var id: AgentID
    public var name: String
    public var state: AgentState
}

/// What one sweep did.
public struct SweepResult: Sendable, Equatable {
    public var agentsMarkedOffline: Int = 0
    public var tasksRequeued: Int = 0
    public var tasksFailed: Int = 0
    public init() {}
}

/// One claim: who asks, for how much, until when the leases hold.
public struct ClaimOrder: Sendable {
    public var agent: AgentID
    public var slots: Int
    public var reportedFree: ResourceVector?
    /// How many assigned-but-not-started tasks the agent would hold beyond what fits it now.
    public var prefetch: Int = 0
    /// Failures of one job's tasks on one agent after which that agent gets no more of them.
    public var blocklistAfter: Int = 3
    public var leaseUntil: Date
    public var now: Date
    /// The agent's slots, busy or not: the master then counts the busy ones itself (see `ClaimRequest.capacity`).
    public var capacity: Int?
    /// Leases that fit the agent's free room are recorded running at once (the exchange's claim);
    /// otherwise they stay assigned until the agent reports their start (the older `claim` route).
    public var startAtOnce = false
    /// With nothing queued that fits, other agents' prefetched backlogs are asked for (`steal`). Not
    /// in a submission's handoff: its claims only take the new work, and no victim would hear.
    public var maySteal = true
    /// The exchange that asks (the agent's number for it): its leases carry it, for the agent's
    /// heartbeats to say whether its answer arrived (`HeartbeatRequest.answered`).
    public var exchange: ExchangeNumber?

    public init(agent: AgentID, slots: Int, reportedFree: ResourceVector? = nil, prefetch: Int = 0,
                blocklistAfter: Int = 3, leaseUntil: Date, now: Date) {
        self.agent = agent
        self.slots = slots
        self.reportedFree = reportedFree
        self.prefetch = prefetch
        self.blocklistAfter = blocklistAfter
        self.leaseUntil = leaseUntil
        self.now = now
    }
}

/// What an exchange did: the answer for the agent, and what the master must wake for it.
public struct ExchangeOutcome: Sendable {
    public var response: ExchangeResponse
    /// Leases taken from other agents' backlogs (they hear through talkback to drop them).
    public var stolen: Int
    /// A run ended or was given back (log followers and dashboards hear of it).
    public var finished: Bool
    /// The tasks this exchange made claimable (retried, given back, dependents unblocked): the held
    /// claims they fit are woken.
    public var readied: NewWork
    /// With no lease: what the agent could still take (see `ClaimOutcome.room`).
    public var room: ClaimRoom
    /// Log bytes arrived: followers may read on.
    public var logged: Bool
}

/// What a claim handed out; `stolen` of them were taken from other agents' backlogs.
public struct ClaimOutcome: Sendable {
    public var leases: [TaskLease]
    public var stolen: Int
    /// With no lease: what the agent could still take, so that its held claim is woken only by work
    /// that fits it.
    public var room: ClaimRoom = .none
}

/// The farm's durable state. Every method is one transaction: when it returns,
/// what it changed is committed (and fsynced). Implementations keep no state
/// of their own that another master would need, so several masters can share
/// one database (docs/ARCHITECTURE.md §7). State changes are conditioned on
/// `TaskTransition.rule`, the single table of legal moves. When the database cannot be reached,
/// methods throw errors conforming to `StoreUnavailable` (answered 503, retried by clients).
public protocol Store: Sendable {
    /// `sqlite` or `postgres`: reported by `/v1/master` and `/healthz`.
    var backend: String { get }
    /// Carries wake-ups to the other masters on the same database (nil when there are none).
    var relay: (any WakeRelay)? { get }
    /// Closes the database connections (the master is stopping).
    func close() async

    /// The database answers (one trivial round trip), for `/healthz`. Throws when it does not; an
    /// unreachable database is reported with an error conforming to `StoreUnavailable`.
    func ping() async throws

    /// Stores a validated job (its dependency graph built by the validation), under an idempotency
    /// key when there is one: the same key and body answer the job stored the first time.
    /// With `handoff`, the new job's claimable tasks are leased in the same transaction to the held
    /// exchanges they fit (`HeldClaims`), which hear after the commit.
    func submit(_ job: ValidatedJob, owner: String, now: Date, idempotency: SubmissionKey?,
                handoff: HeldClaims?) async throws -> SubmitOutcome
    func job(_ id: JobID) async throws -> JobView
    func jobs(_ filter: JobFilter, page: PageRequest) async throws -> Page<JobView>
    func task(_ id: TaskID, history: Bool) async throws -> TaskView
    func tasks(_ filter: TaskFilter, page: PageRequest) async throws -> Page<TaskView>
    /// Distinct requirements of a job's queued tasks, with how many tasks have each.
    func queuedRequirements(job: JobID) async throws -> [(TaskRequirements, Int)]
    /// The owner of each task's job (tasks that do not exist are left out).
    func owners(of tasks: [TaskID]) async throws -> [TaskID: String]

    /// Enrolls a new agent under `credential` (kept hashed), or re-enrolls one of the same name
    /// with a fresh credential (the old process is gone: the tasks it held go back to the queue).
    /// Re-enrolling needs the agent's current credential in `request.credential`, or an admin's
    /// `resetAgent` since: else 409 `agent_name_taken`. A deleted agent's name is 409
    /// `agent_deleted` until `resetAgent`. With `joinToken`, one use of that token is counted in
    /// the same transaction; an expired, revoked or used-up one is 401 and nothing is enrolled.
    func enroll(_ request: EnrollRequest, credential: String, joinToken: TokenID?, now: Date) async throws -> AgentID
    /// The agent whose credential this is (looked up by its hash).
    func authenticate(credential: String) async throws -> AgentIdentity?
    /// Lets a host enroll under `name` without the enrolled agent's credential (which stops
    /// working), or lets a deleted agent's name back; 404 when neither.
    func resetAgent(name: String, now: Date) async throws -> AgentResetResult

    // MARK: named tokens (only the SHA-256 of each secret is kept)

    func createToken(_ request: TokenRequest, secret: String, now: Date) async throws -> TokenView
    func tokens(now: Date) async throws -> [TokenView]
    func revokeToken(_ id: TokenID, now: Date) async throws -> TokenView
    /// The token whose secret this is (looked up by its hash), in whatever state it is.
    func token(secret: String, now: Date) async throws -> TokenView?
    func agent(_ id: AgentID) async throws -> AgentView
    func agents() async throws -> [AgentView]
    /// Each agent that is not disabled, as placement sees it: one read, no view per agent.
    func agentCapacities() async throws -> [AgentCapacity]
    /// Renews the leases in `beat.held`; see `HeartbeatRequest` for `authoritative` and `leaving`.
    func heartbeat(agent: AgentID, beat: HeartbeatRequest, leaseUntil: Date, now: Date) async throws
        -> (AgentState, lost: [HeldLease], released: Int)

    /// Leases to `order.agent` the best queued tasks that fit it, in one transaction.
    func claim(_ order: ClaimOrder) async throws -> ClaimOutcome
    /// Applies an agent's reports (each fenced on its own: a refused one is listed, the others
    /// apply) and then its claim, in one transaction. `credential`: the hash of the credential the
    /// agent presented, when it has not been checked yet (unauthorized unless it is the agent's).
    func exchange(agent: AgentID, _ request: ExchangeRequest, claim: ClaimOrder?, credential: String?, leaseUntil: Date,
                  now: Date) async throws -> ExchangeOutcome
    func start(task: TaskID, agent: AgentID, epoch: LeaseEpoch, leaseUntil: Date, now: Date) async throws -> TaskView
    func progress(task: TaskID, agent: AgentID, epoch: LeaseEpoch, progress: Double, leaseUntil: Date, now: Date) async throws
    func finish(task: TaskID, agent: AgentID, report: FinishReport, now: Date) async throws -> TaskView

    /// Appends the bytes at `offset` of this run's log; resends of bytes already held are skipped.
    /// Returns how many bytes of the run's log the master has received.
    func appendLog(task: TaskID, agent: AgentID, epoch: LeaseEpoch, offset: Int64, data: Data) async throws -> Int64
    /// The stored log of one run (the latest when `attempt` is nil), in chunks, oldest first.
    func readLog(task: TaskID, attempt: Int?, after: Int64, limit: Int) async throws -> LogPage

    // MARK: control (jobs, tasks, agents) and talkback. Stopping a task that an agent runs
    // enqueues the command that tells it, in the same transaction.

    func patchJob(_ id: JobID, _ patch: JobPatch) async throws -> JobView
    /// Cancels every task of the job not finished yet; `archive` also hides it from default listings.
    func cancelJob(_ id: JobID, archive: Bool, now: Date) async throws -> JobView
    func pauseJob(_ id: JobID, kill: Bool, now: Date) async throws -> JobView
    func resumeJob(_ id: JobID) async throws -> JobView
    func retryJob(_ id: JobID, now: Date) async throws -> JobView
    func cancelTask(_ id: TaskID, now: Date) async throws -> TaskView
    func retryTask(_ id: TaskID, now: Date) async throws -> TaskView
    /// All or nothing: every id must exist and every change be legal, or nothing changes.
    func patchTasks(_ patch: TaskBulkPatch, now: Date) async throws -> Int
    func patchAgent(_ id: AgentID, _ patch: AgentPatch, now: Date) async throws -> AgentView
    func forgetAgent(_ id: AgentID, now: Date) async throws
    /// Agents on which at least `threshold` of the job's runs failed.
    func blocklist(job: JobID, threshold: Int) async throws -> [BlocklistEntry]
    func clearBlocklist(job: JobID) async throws
    func sendCommand(to agent: AgentID, _ request: CommandRequest, now: Date) async throws -> Int64
    /// Unexpired commands for `agent` with a sequence number above `after`, oldest first.
    func commands(for agent: AgentID, after: Int64, now: Date) async throws -> [AgentCommand]

    // MARK: observability

    func addException(agent: AgentID, _ report: ExceptionReport, now: Date) async throws -> ExceptionView
    func exceptions(agent: AgentID, page: PageRequest) async throws -> Page<ExceptionView>
    /// The agent's host samples since `since`, oldest first (downsampled and bounded).
    func metricsSeries(agent: AgentID, since: Date) async throws -> [HostMetrics]
    /// Counts for `/v1/master` and `/metrics`.
    func summary() async throws -> FarmSummary

    /// Marks silent agents offline and requeues (or fails) the tasks whose leases ran out, and notes
    /// when it swept (`grantGrace` reads it).
    func sweep(now: Date, silentSince: Date) async throws -> SweepResult
    /// Gives every live lease until `until`, and online agents as long (docs/ARCHITECTURE.md §3).
    func extendLeases(until: Date) async throws
    /// Moves the `last_seen` of these agents, if online, to `now`: they hold a long-poll open
    /// (`LivenessKeeper`). An offline one stays offline (only its heartbeat brings it back).
    func keepAlive(_ agents: [AgentID], now: Date) async throws

    /// The clock leases are measured on: the database's.
    var clock: LeaseClock { get }
    /// Reads the database's clock and follows it; returns how far it was from what `clock` said.
    func syncClock() async throws -> TimeInterval
    /// The grace after an outage (a master starting, the database back): the time during which no
    /// master swept leases is not held against anyone. Every live lease, and every online agent's
    /// silence, is moved later by that gap (less one sweep period), so each keeps what it had left
    /// when sweeping stopped. A master that restarts while another one sweeps finds no gap and gives
    /// nothing (a master restarting in a loop never keeps a dead host's leases alive); two masters
    /// starting together give it once. Returns the seconds given, nil when none. A store that never
    /// recorded a sweep (from before this was kept) gives every live lease `leaseTimeout` from now.
    func grantGrace(leaseTimeout: Double, now: Date) async throws -> TimeInterval?
}

/// What a submission's placement warnings need of an agent: who it is, its totals and its tags.
public struct AgentCapacity: Sendable {
    public var id: AgentID
    public var name: String
    public var total: ResourceVector
    public var tags: Set<String>
}

extension Store {
    /// From the agents' views, for stores that keep no cheaper read.
    public func agentCapacities() async throws -> [AgentCapacity] {
        try await agents().filter { $0.state != .disabled }.map {
            AgentCapacity(id: $0.id, name: $0.name, total: $0.resources.total, tags: Set($0.tags))
        }
    }

    /// Stores a job built in code (a test, a tool): checked by the same validation as a submitted
    /// body, a broken rule answered as the API would (400 naming the field).
    public func submit(_ job: ValidatedJob, owner: String, now: Date, idempotency: SubmissionKey?) async throws -> SubmitOutcome {
        try await submit(job, owner: owner, now: now, idempotency: idempotency, handoff: nil)
    }

    public func submit(_ job: JobSubmission, owner: String, now: Date,
                       idempotency: SubmissionKey? = nil) async throws -> SubmitOutcome {
        let validated: ValidatedJob
        do { validated = try job.validated() } catch { throw error.refusal }
        return try await submit(validated, owner: owner, now: now, idempotency: idempotency)
    }

    public func submit(_ job: JobSubmission, owner: String, now: Date) async throws -> JobView {
        try await submit(job, owner: owner, now: now, idempotency: nil).job
    }

    /// Enrolls with no join token to count (the bootstrap join token, or the admin's).
    public func enroll(_ request: EnrollRequest, credential: String, now: Date) async throws -> AgentID {
        try await enroll(request, credential: credential, joinToken: nil, now: now)
    }
}

/// A submission's `Idempotency-Key` and the SHA-256 of its body.
public struct SubmissionKey: Sendable, Equatable {
    public var key: String
    public var bodyHash: String
    /// Keys are forgotten after a day.
    public static let lifetime: TimeInterval = 24 * 3600
    public init(key: String, bodyHash: String) {
        self.key = key
        self.bodyHash = bodyHash
    }
}

/// The job a submission made, or found made by an earlier one under its idempotency key.
public struct SubmitOutcome: Sendable {
    public var job: JobView
    /// The key was seen before with this body: no new job was made.
    public var replayed: Bool
    /// The job's tasks that are claimable at once (not waiting for dependencies).
    public var readied: NewWork
    /// A new job's queued tasks' requirements, with how many need each (as `queuedRequirements`
    /// answers them, in its order); nil for a replay.
    public var queued: [(TaskRequirements, Int)]?
    /// The leases the transaction made for held exchanges (`HeldClaims`), to deliver after its commit.
    var handedOff: [(Handoff, [TaskLease])] = []
    public init(job: JobView, replayed: Bool, readied: NewWork = NewWork(), queued: [(TaskRequirements, Int)]? = nil) {
        self.job = job
        self.replayed = replayed
        self.readied = readied
        self.queued = queued
    }
}
