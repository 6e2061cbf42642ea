import Foundation
import PaddockMaster
import PaddockProtocol
import Synchronization

/// The network between a master and its database, around a real store: while `cut` is set, every
/// call fails as a driver fails when its database cannot be reached (or, with `hang`, never
/// answers); otherwise it goes through to the real store unchanged.
final class UnreachableStore: Store {
    struct Unreachable: StoreUnavailable, CustomStringConvertible {
        var description: String { "connection to the database refused" }
    }

    let inner: any Store
    private let state = Mutex<(cut: Bool, hang: Bool)>((false, false))
    /// What each sweep that reached the database did, in order.
    private let swept = Mutex<[SweepResult]>([])
    var sweeps: [SweepResult] { swept.withLock { $0 } }

    init(_ inner: any Store) { self.inner = inner }

    var cut: Bool {
        get { state.withLock { $0.cut } }
        set { state.withLock { $0.cut = newValue } }
    }
    /// Calls wait (for a minute) instead of failing: a database that accepts and never answers.
    var hang: Bool {
        get { state.withLock { $0.hang } }
        set { state.withLock { $0.hang = newValue } }
    }

    private func network() async throws {
        let (cut, hang) = state.withLock { ($0.cut, $0.hang) }
        if hang { try await Task.sleep(for: .seconds(300)) }
        if cut { throw Unreachable() }
    }

    var backend: String { inner.backend }
    var relay: (any WakeRelay)? { inner.relay }
    func close() async { await inner.close() }
    func ping() async throws { try await network(); try await inner.ping() }
    func submit(_ job: ValidatedJob, owner: String, now: Date, idempotency: SubmissionKey?,
                handoff: HeldClaims?) async throws -> SubmitOutcome {
        try await network()
        return try await inner.submit(job, owner: owner, now: now, idempotency: idempotency, handoff: handoff)
    }
    func job(_ id: JobID) async throws -> JobView { try await network(); return try await inner.job(id) }
    func jobs(_ filter: JobFilter, page: PageRequest) async throws -> Page<JobView> {
        try await network(); return try await inner.jobs(filter, page: page)
    }
    func task(_ id: TaskID, history: Bool) async throws -> TaskView {
        try await network(); return try await inner.task(id, history: history)
    }
    func tasks(_ filter: TaskFilter, page: PageRequest) async throws -> Page<TaskView> {
        try await network(); return try await inner.tasks(filter, page: page)
    }
    func queuedRequirements(job: JobID) async throws -> [(TaskRequirements, Int)] {
        try await network(); return try await inner.queuedRequirements(job: job)
    }
    func enroll(_ request: EnrollRequest, credential: String, joinToken: TokenID?, now: Date) async throws -> AgentID {
        try await network(); return try await inner.enroll(request, credential: credential, joinToken: joinToken, now: now)
    }
    func resetAgent(name: String, now: Date) async throws -> AgentResetResult {
        try await network(); return try await inner.resetAgent(name: name, now: now)
    }
    func createToken(_ request: TokenRequest, secret: String, now: Date) async throws -> TokenView {
        try await network(); return try await inner.createToken(request, secret: secret, now: now)
    }
    func tokens(now: Date) async throws -> [TokenView] { try await network(); return try await inner.tokens(now: now) }
    func revokeToken(_ id: TokenID, now: Date) async throws -> TokenView {
        try await network(); return try await inner.revokeToken(id, now: now)
    }
    func token(secret: String, now: Date) async throws -> TokenView? {
        try await network(); return try await inner.token(secret: secret, now: now)
    }
    func owners(of tasks: [TaskID]) async throws -> [TaskID: String] {
        try await network(); return try await inner.owners(of: tasks)
    }
    func authenticate(credential: String) async throws -> AgentIdentity? {
        try await network(); return try await inner.authenticate(credential: credential)
    }
    func agent(_ id: AgentID) async throws -> AgentView { try await network(); return try await inner.agent(id) }
    func agents() async throws -> [AgentView] { try await network(); return try await inner.agents() }
    func heartbeat(agent: AgentID, beat: HeartbeatRequest, leaseUntil: Date, now: Date) async throws
        -> (AgentState, lost: [HeldLease], released: Int) {
        try await network(); return try await inner.heartbeat(agent: agent, beat: beat, leaseUntil: leaseUntil, now: now)
    }
    func claim(_ order: ClaimOrder) async throws -> ClaimOutcome { try await network(); return try await inner.claim(order) }
    func exchange(agent: AgentID, _ request: ExchangeRequest, claim: ClaimOrder?, credential: String?, leaseUntil: Date,
                  now: Date) async throws -> ExchangeOutcome {
        try await network()
        return try await inner.exchange(agent: agent, request, claim: claim, credential: credential, leaseUntil: leaseUntil, now: now)
    }
    func start(task: TaskID, agent: AgentID, epoch: LeaseEpoch, leaseUntil: Date, now: Date) async throws -> TaskView {
        try await network(); return try await inner.start(task: task, agent: agent, epoch: epoch, leaseUntil: leaseUntil, now: now)
    }
    func progress(task: TaskID, agent: AgentID, epoch: LeaseEpoch, progress: Double, leaseUntil: Date, now: Date) async throws {
        try await network()
        try await inner.progress(task: task, agent: agent, epoch: epoch, progress: progress, leaseUntil: leaseUntil, now: now)
    }
    func finish(task: TaskID, agent: AgentID, report: FinishReport, now: Date) async throws -> TaskView {
        try await network(); return try await inner.finish(task: task, agent: agent, report: report, now: now)
    }
    func appendLog(task: TaskID, agent: AgentID, epoch: LeaseEpoch, offset: Int64, data: Data) async throws -> Int64 {
        try await network(); return try await inner.appendLog(task: task, agent: agent, epoch: epoch, offset: offset, data: data)
    }
    func readLog(task: TaskID, attempt: Int?, after: Int64, limit: Int) async throws -> LogPage {
        try await network(); return try await inner.readLog(task: task, attempt: attempt, after: after, limit: limit)
    }
    func patchJob(_ id: JobID, _ patch: JobPatch) async throws -> JobView { try await network(); return try await inner.patchJob(id, patch) }
    func cancelJob(_ id: JobID, archive: Bool, now: Date) async throws -> JobView {
        try await network(); return try await inner.cancelJob(id, archive: archive, now: now)
    }
    func pauseJob(_ id: JobID, kill: Bool, now: Date) async throws -> JobView {
        try await network(); return try await inner.pauseJob(id, kill: kill, now: now)
    }
    func resumeJob(_ id: JobID) async throws -> JobView { try await network(); return try await inner.resumeJob(id) }
    func retryJob(_ id: JobID, now: Date) async throws -> JobView { try await network(); return try await inner.retryJob(id, now: now) }
    func cancelTask(_ id: TaskID, now: Date) async throws -> TaskView { try await network(); return try await inner.cancelTask(id, now: now) }
    func retryTask(_ id: TaskID, now: Date) async throws -> TaskView { try await network(); return try await inner.retryTask(id, now: now) }
    func patchTasks(_ patch: TaskBulkPatch, now: Date) async throws -> Int {
        try await network(); return try await inner.patchTasks(patch, now: now)
    }
    func patchAgent(_ id: AgentID, _ patch: AgentPatch, now: Date) async throws -> AgentView {
        try await network(); return try await inner.patchAgent(id, patch, now: now)
    }
    func forgetAgent(_ id: AgentID, now: Date) async throws { try await network(); try await inner.forgetAgent(id, now: now) }
    func blocklist(job: JobID, threshold: Int) async throws -> [BlocklistEntry] {
        try await network(); return try await inner.blocklist(job: job, threshold: threshold)
    }
    func clearBlocklist(job: JobID) async throws { try await network(); try await inner.clearBlocklist(job: job) }
    func sendCommand(to agent: AgentID, _ request: CommandRequest, now: Date) async throws -> Int64 {
        try await network(); return try await inner.sendCommand(to: agent, request, now: now)
    }
    func commands(for agent: AgentID, after: Int64, now: Date) async throws -> [AgentCommand] {
        try await network(); return try await inner.commands(for: agent, after: after, now: now)
    }
    func addException(agent: AgentID, _ report: ExceptionReport, now: Date) async throws -> ExceptionView {
        try await network(); return try await inner.addException(agent: agent, report, now: now)
    }
    func exceptions(agent: AgentID, page: PageRequest) async throws -> Page<ExceptionView> {
        try await network(); return try await inner.exceptions(agent: agent, page: page)
    }
    func metricsSeries(agent: AgentID, since: Date) async throws -> [HostMetrics] {
        try await network(); return try await inner.metricsSeries(agent: agent, since: since)
    }
    func summary() async throws -> FarmSummary { try await network(); return try await inner.summary() }
    func sweep(now: Date, silentSince: Date) async throws -> SweepResult {
        try await network()
        let result = try await inner.sweep(now: now, silentSince: silentSince)
        swept.withLock { $0.append(result) }
        return result
    }
    func extendLeases(until: Date) async throws { try await network(); try await inner.extendLeases(until: until) }
    func keepAlive(_ agents: [AgentID], now: Date) async throws { try await network(); try await inner.keepAlive(agents, now: now) }
    var clock: LeaseClock { inner.clock }
    func syncClock() async throws -> TimeInterval { try await network(); return try await inner.syncClock() }
    func grantGrace(leaseTimeout: Double, now: Date) async throws -> TimeInterval? {
        try await network()
        return try await inner.grantGrace(leaseTimeout: leaseTimeout, now: now)
    }
}
