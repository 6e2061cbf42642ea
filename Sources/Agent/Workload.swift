import Foundation
import PaddockProtocol

/// What the agent holds right now: its leases and their processes. The claim
/// loop asks it for room; runners add and remove themselves.
actor Workload {
    struct Held {
        var lease: TaskLease
        var process: ChildProcess?
        /// Set when the agent itself stopped the task (cancel, lost lease, shutdown).
        var stopReason: String?
    }

    private(set) var total: ResourceVector
    let slots: Int
    /// Told to drain: finish what runs, claim nothing new.
    private(set) var draining = false
    private(set) var held: [TaskID: Held] = [:]
    /// Set when the agent starts shutting down: its heartbeats then say it is leaving.
    private(set) var leaving = false
    private var roomWaiters: [CheckedContinuation<Void, Never>] = []

    init(total: ResourceVector, slots: Int) {
        self.total = total
        self.slots = slots
    }

    var free: ResourceVector {
        held.values.reduce(total) { $0 - $1.lease.requirements.resources }
    }

    var freeSlots: Int { max(0, slots - held.count) }

    var leases: [HeldLease] { held.values.map(\.lease.held) }

    var isEmpty: Bool { held.isEmpty }

    func leave() { leaving = true }

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
    }

    func add(_ lease: TaskLease) { held[lease.task] = Held(lease: lease) }

    func attach(_ process: ChildProcess, to task: TaskID) -> Bool {
        guard held[task] != nil, held[task]?.stopReason == nil else { return false }
        held[task]?.process = process
        return true
    }

    func remove(_ task: TaskID) {
        held.removeValue(forKey: task)
        wakeRoomWaiters()
    }

    func stopReason(_ task: TaskID) -> String? { held[task]?.stopReason }

    /// Marks the task as stopped by the agent and returns its process, if it runs.
    func markStopped(_ task: TaskID, epoch: LeaseEpoch? = nil, reason: String) -> ChildProcess?? {
        guard let entry = held[task], epoch == nil || entry.lease.epoch == epoch else { return nil }
        held[task]?.stopReason = reason
        return .some(entry.process)
    }

    func allTasks() -> [TaskID] { Array(held.keys) }

    /// Returns once the agent is not draining and has a free slot and some CPU left.
    func waitForRoom() async {
        while draining || freeSlots == 0 || free.milliCPUs <= 0 && total.milliCPUs > 0 {
            await withCheckedContinuation { roomWaiters.append($0) }
        }
    }
}
