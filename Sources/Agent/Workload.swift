import Foundation
import PaddockProtocol

/// Why the agent itself stopped a run.
enum StopReason: String, Sendable {
    /// A user cancelled the task (talkback `cancel`).
    case cancelled
    /// The master moved the lease to another agent (talkback `drop`, a refused start).
    case dropped = "dropped: its lease moved on"
    /// The master says the lease is gone (expired, or the task was requeued).
    case leaseLost = "lease lost"
    /// The run took longer than the task's `timeout`.
    case timeout
    /// The agent is shutting down and gives the task back (no attempt used).
    case shutdown = "agent shutting down"
    /// The master refused a prefetched lease's start for want of room (its view lagged): given back.
    case startRefused = "start refused by the master: no room for it there yet"
    /// The master asked for a prefetched lease not started yet (talkback `give_back`: work stealing).
    case givenBack = "given back: an idle agent has room for it"

    /// The run is given back to the queue (no attempt used) rather than failed.
    var releases: Bool { self == .shutdown || self == .startRefused || self == .givenBack }

    /// The master itself decided this stop, so it refuses the run's finish report: that is no error.
    var masterDecided: Bool { self == .cancelled || self == .dropped || self == .leaseLost }
}

/// What `Workload.markStopped` found: a run to stop, or a lease whose process was never launched.
enum StoppedRun: Sendable {
    case notLaunched
    /// `grace`: what the task asks between SIGTERM and SIGKILL (`StopGrace`), if it asks; `notify`:
    /// where to tell it when that ends (a grace above zero: OpenJD's NOTIFY_THEN_TERMINATE).
    case running(any RunningProcess, grace: Duration?, notify: String?)

    /// Stops the run's process group (SIGTERM, SIGKILL after the task's own grace, else `grace`, on
    /// `clock`), if it runs. A notified run first finds `cancel_info.json` in its working directory,
    /// `{"NotifyEnd": TIME}` (UTC), as OpenJD's runtime writes it.
    func terminate(grace: Duration, clock: any AgentClock) async {
        guard case .running(let process, let own, let notify) = self else { return }
        if let own, let notify {
            let end = Date().addingTimeInterval(Double(own.components.seconds))
            let text = #"{"NotifyEnd": "\#(ISO8601DateFormatter().string(from: end))"}"#
            _ = FileManager.default.createFile(atPath: notify + "/cancel_info.json", contents: Data(text.utf8))
        }
        await process.terminate(grace: own ?? grace, clock: clock)
    }
}

/// What the agent holds right now: its leases and their processes. The exchange
/// loop asks it for room; runners add and remove themselves.
actor Workload {
    struct Held {
        var lease: TaskLease
        var process: (any RunningProcess)?
        /// Set when the agent itself stopped the task (cancel, lost lease, shutdown).
        var stopReason: StopReason?
        /// A prefetched lease that has no room reserved yet: it waits for a running task to end.
        var waiting: Bool
        /// What its process group used, as last sampled.
        var usage: TaskUsage?
        /// The run's working directory (where a notified stop writes `cancel_info.json`).
        var workDir: String?
        /// Its process has ended and its finish is in the outbox: its room is free for the next run,
        /// though the agent still holds the lease until the runner is done (its directory recycled).
        var released = false

        /// Whether it takes room now: a run, or a lease about to run, not yet released.
        var occupies: Bool { !waiting && !released }
    }

    private(set) var total: ResourceVector
    let slots: Int
    /// How many prefetched leases the agent keeps waiting beyond what it runs.
    let prefetchPolicy: PrefetchPolicy
    /// How long the last runs took, oldest first (what `auto` prefetch decides on).
    private var recentRuns: [Duration] = []
    /// Told to drain: finish what runs, claim nothing new.
    private(set) var draining = false
    private(set) var held: [TaskID: Held] = [:]
    /// Set when the agent starts shutting down: its heartbeats then say it is leaving.
    private(set) var leaving = false
    private var roomWaiters: [CheckedContinuation<Void, Never>] = []
    /// Told when room frees up or the agent starts leaving (the exchange loop claims or stops).
    nonisolated let nudge: Nudge
    /// Poked once, when the agent starts leaving: what waits only for that (a held long-poll) is not
    /// woken by every report and every freed slot as `nudge`'s waiters are.
    nonisolated let departure: Nudge
    /// The exchanges whose leases the workload holds, or would if their answers had arrived.
    nonisolated let exchanges: ExchangeLedger

    init(total: ResourceVector, slots: Int, prefetch: PrefetchPolicy = .fixed(0), nudge: Nudge) {
        self.total = total
        self.slots = slots
        self.prefetchPolicy = prefetch
        self.nudge = nudge
        departure = Nudge(clock: nudge.clock)
        exchanges = ExchangeLedger(clock: nudge.clock)
    }

    /// Room not reserved by a lease that runs or is about to (waiting prefetched leases reserve nothing).
    var free: ResourceVector {
        held.values.filter(\.occupies).reduce(total) { $0 - $1.lease.requirements.resources }
    }

    var freeSlots: Int { max(0, slots - held.values.filter(\.occupies).count) }

    var leases: [HeldLease] { held.values.map(\.lease.held) }

    var isEmpty: Bool { held.isEmpty }

    func leave() {
        leaving = true
        departure.poke()
        wakeRoomWaiters()
    }

    func setDraining(_ value: Bool) {
        draining = value
        wakeRoomWaiters()
    }

    func setTotal(_ value: ResourceVector) {
        total = value
        wakeRoomWaiters()
    }

    private func wakeRoomWaiters() {
        let waiters = roomWaiters
        roomWaiters.removeAll()
        waiters.forEach { $0.resume() }
        nudge.poke()
    }

    /// The claim for the agent's free room, or nil when it should claim nothing (no room, draining,
    /// leaving). `ending`: runs whose end goes in the same exchange (their room is free by the time
    /// the master claims). The master also counts what it leased to the agent and uses the tighter.
    func claimRequest(wait: Double, ending: Set<TaskID> = []) -> ClaimRequest? {
        guard !draining, !leaving else { return nil }
        let active = held.filter { !ending.contains($0.key) && !$0.value.released }.values
        // Prefetched leases waiting for room come first: the room they will take is not claimed again.
        let occupying = active.filter { !$0.waiting || $0.stopReason == nil }
        let room = occupying.reduce(total) { $0 - $1.lease.requirements.resources }
        let open = max(0, slots - occupying.count)
        let slots = room.isNonNegative && (room.milliCPUs > 0 || total.milliCPUs == 0) ? open : 0
        let prefetchRoom = max(0, prefetch - active.filter(\.waiting).count)
        guard slots > 0 || prefetchRoom > 0 else { return nil }
        let free = ResourceVector(milliCPUs: max(0, room.milliCPUs), ram: max(0, room.ram), disk: max(0, room.disk),
                                  gpus: max(0, room.gpus))
        return ClaimRequest(slots: slots, wait: wait, free: free, prefetch: prefetchRoom, capacity: self.slots)
    }

    /// Whether the outbox's starts and finishes may wait a moment for company: every slot runs
    /// something or has a prefetched lease waiting to take it, and more than half the prefetch
    /// would still wait after that. The exchange that refills the prefetch is then not yet needed.
    var canCoalesce: Bool {
        guard !draining, !leaving else { return false }
        let waiting = held.values.filter { $0.waiting && $0.stopReason == nil }.count
        let reserved = held.values.filter(\.occupies).count
        let stock = waiting - max(0, slots - reserved)
        return stock > 0 && stock > prefetch / 2
    }

    /// How many leases to hold beyond what runs, now.
    var prefetch: Int { prefetchPolicy.count(recentRuns: recentRuns, slots: slots) }

    /// Notes how long a run took (from its launch to its process's end), for `auto` prefetch.
    /// Returns the new prefetch when that changes it.
    func recordRun(_ length: Duration) -> Int? {
        let before = prefetch
        recentRuns.append(length)
        if recentRuns.count > PrefetchPolicy.window { recentRuns.removeFirst(recentRuns.count - PrefetchPolicy.window) }
        let now = prefetch
        return now == before ? nil : now
    }

    /// What a run's end tells the runner, in one call once its process has ended.
    struct Conclusion: Sendable {
        /// Why the agent stopped it, if it did.
        var stopReason: StopReason?
        /// What it used, its last sample and its end's counters together.
        var usage: TaskUsage?
        /// The new prefetch, when this run's length changed it.
        var prefetch: Int?
    }

    /// Notes a run's end: its length (from its launch to its process's end, for `auto` prefetch)
    /// and what it used, and says why it was stopped.
    func conclude(_ task: TaskID, usage: TaskUsage, ran: Duration) -> Conclusion {
        let prefetch = recordRun(ran)
        recordUsage(usage, for: task)
        return Conclusion(stopReason: held[task]?.stopReason, usage: held[task]?.usage, prefetch: prefetch)
    }

    /// The run's finish is in the outbox: its room goes to the next run now, before the runner
    /// recycles its directory. Its lease stays held (heartbeats list it) until `remove`.
    func release(_ task: TaskID) {
        guard held[task] != nil, held[task]?.released == false else { return }
        held[task]?.released = true
        wakeRoomWaiters()
    }

    func add(_ lease: TaskLease) { held[lease.task] = Held(lease: lease, waiting: lease.prefetched) }

    /// Holds an exchange's leases, all in one step; none (false) once the agent is leaving.
    func add(_ leases: [TaskLease]) -> Bool {
        guard !leaving else { return false }
        leases.forEach(add)
        return true
    }

    /// For a prefetched lease: waits until it fits beside what runs, then reserves its room.
    /// False when it was stopped (stolen, cancelled, shutdown) while it waited.
    func reserve(_ task: TaskID) async -> Bool {
        while let entry = held[task], entry.waiting, entry.stopReason == nil {
            // Oldest first: a steal takes the newest prefetched leases, so the one this agent
            // starts next is the one least likely to be taken while its start is being confirmed.
            let older = held.values.contains { $0.waiting && $0.stopReason == nil && $0.lease.task < task }
            if !older && freeSlots > 0 && entry.lease.requirements.resources.fits(in: free) {
                held[task]?.waiting = false
                return true
            }
            await withCheckedContinuation { roomWaiters.append($0) }
        }
        return held[task].map { $0.stopReason == nil } ?? false
    }

    func attach(_ process: any RunningProcess, to task: TaskID, workDir: String? = nil) -> Bool {
        guard held[task] != nil, held[task]?.stopReason == nil else { return false }
        held[task]?.process = process
        held[task]?.workDir = workDir
        return true
    }

    func remove(_ task: TaskID) {
        held.removeValue(forKey: task)
        wakeRoomWaiters()
    }

    func stopReason(_ task: TaskID) -> StopReason? { held[task]?.stopReason }

    /// Marks the task as stopped by the agent; nil when the agent does not hold it (under `epoch`),
    /// or already stops it (a lost lease said again by every heartbeat until the run's end is told
    /// must not SIGTERM it again and again through its grace), unless the agent now leaves.
    /// The first reason stands: a run cancelled and then caught by the shutdown stays cancelled.
    func markStopped(_ task: TaskID, epoch: LeaseEpoch? = nil, reason: StopReason) -> StoppedRun? {
        guard let entry = held[task], epoch == nil || entry.lease.epoch == epoch else { return nil }
        if entry.stopReason == nil { held[task]?.stopReason = reason }
        if entry.waiting { wakeRoomWaiters() }  // a waiting runner must see it was stopped
        if entry.stopReason != nil, entry.process != nil, reason != .shutdown { return nil }
        // A cancel, a timeout or a lost lease gives the task the grace it asks for; the agent's own
        // shutdown keeps the agent's (it must end within its deadline).
        let own = reason == .shutdown ? nil : StopGrace.requested(by: entry.lease.env)
        let notify = own.flatMap { $0 > .zero ? entry.workDir : nil }
        return entry.process.map { StoppedRun.running($0, grace: own, notify: notify) } ?? .notLaunched
    }

    /// Talkback `give_back`: a prefetched lease still waiting for room is stopped, to be reported
    /// released by its runner. False when it has started (or is not held, under that epoch, or is
    /// stopped already): the agent keeps it, and its start counts.
    func giveBack(_ task: TaskID, epoch: LeaseEpoch) -> Bool {
        guard let entry = held[task], entry.lease.epoch == epoch, entry.waiting, entry.stopReason == nil else { return false }
        held[task]?.stopReason = .givenBack
        wakeRoomWaiters()
        return true
    }

    func allTasks() -> [TaskID] { Array(held.keys) }

    /// Prefetched leases still waiting for room: what a drain gives back. A lease claimed into free
    /// room is running for the master from the claim's commit, launched or about to be: a drain lets
    /// it run like the others.
    func waitingForRoom() -> [TaskID] { held.filter { $0.value.waiting }.map(\.key) }

    /// The running tasks' processes, to sample what they use.
    var processes: [TaskID: (epoch: LeaseEpoch, process: any RunningProcess)] {
        held.compactMapValues { entry in entry.process.map { (entry.lease.epoch, $0) } }
    }

    func recordUsage(_ usage: TaskUsage, for task: TaskID) {
        // Computed first: assigning through `held[task]?` begins a write to `held` before its right side runs.
        let total = held[task]?.usage.map { $0.updated(with: usage) } ?? usage
        held[task]?.usage = total
    }

    func usage(of task: TaskID) -> TaskUsage? { held[task]?.usage }

}
