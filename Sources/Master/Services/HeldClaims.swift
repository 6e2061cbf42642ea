import Foundation
import PaddockProtocol
import Synchronization

/// The held exchanges of this master that wait for work, each with the claim it would make: a
/// submission leases its new tasks to them inside its own transaction (a handoff), so that an idle
/// agent's lease commits with the submission and not in a claim transaction of its own after a
/// wake-up. That was one commit and two hops (the wake-up, the held exchange's claim round) between
/// a submission and its task's start.
///
/// A held exchange registers before it waits and withdraws when it wakes. A submission takes the
/// registrations its new work fits (`take`, on the writer's thread, inside the transaction): taking
/// one wakes its exchange, which can no longer withdraw it and waits for the leases. Once the
/// submission's commit is known it delivers each its leases (none if the transaction failed, or if
/// the claim found nothing after all). Only this master's held exchanges are taken: other masters'
/// are woken through the relay and claim as before.
public final class HeldClaims: Sendable {
    /// A held exchange's claim, as it would run it.
    struct Entry: Sendable {
        /// The held exchange's order (its agent's); its clock and lease end are set when a submission takes it.
        let order: ClaimOrder
        let leaseTimeout: TimeInterval
        let room: ClaimRoom
        /// The hash of the credential the exchange came with when the auth middleware let it through
        /// unchecked (`MasterContext.uncheckedCredential`): the handoff checks it against the agent's
        /// row, as the exchange's own rounds do, so a credential reset since gets nothing.
        let credential: String?
        let handoff: Handoff
    }

    private struct State {
        var entries: [UInt64: Entry] = [:]
        /// The registrations' ids, oldest first (ids only grow: a new one is appended).
        var order: [UInt64] = []
        var next: UInt64 = 0

        mutating func remove(_ id: UInt64) -> Entry? {
            guard let entry = entries.removeValue(forKey: id) else { return nil }
            // Binary search: the ids are sorted.
            var low = 0, high = order.count
            while low < high {
                let middle = (low + high) / 2
                if order[middle] < id { low = middle + 1 } else { high = middle }
            }
            if low < order.count, order[low] == id { order.remove(at: low) }
            return entry
        }
    }
    private let state = Mutex(State())

    public init() {}

    /// Registers a held exchange that waits for work fitting `room`; its registration is the
    /// `Handoff` the leases would come through.
    func hold(_ order: ClaimOrder, leaseTimeout: TimeInterval, room: ClaimRoom, credential: String?) -> Handoff {
        state.withLock { state in
            let id = state.next
            state.next &+= 1
            let handoff = Handoff(id: id)
            state.entries[id] = Entry(order: order, leaseTimeout: leaseTimeout, room: room, credential: credential,
                                      handoff: handoff)
            state.order.append(id)
            return handoff
        }
    }

    /// Ends a registration: true when it was still registered, false when a submission took it (its
    /// leases then come through the handoff, which is always delivered).
    func withdraw(_ handoff: Handoff) -> Bool {
        state.withLock { $0.remove(handoff.id) != nil }
    }

    /// Takes the registrations `work` fits, oldest first, at most one per new task and one per
    /// agent (as `WakePlan` wakes held claims): each is the caller's to deliver to. Their exchanges
    /// are woken now, so that no notification counts them among the claims it wakes meanwhile.
    func take(for work: NewWork) -> [Entry] {
        guard !work.isEmpty, !work.isAnything, let shapes = work.shapes else { return [] }
        let taken = state.withLock { state -> [Entry] in
            var taken: [Entry] = []
            var agents: Set<AgentID> = []
            for id in state.order where taken.count < work.count {
                guard let entry = state.entries[id], !agents.contains(entry.order.agent),
                      shapes.contains(where: entry.room.takes) else { continue }
                agents.insert(entry.order.agent)
                taken.append(entry)
            }
            for entry in taken { _ = state.remove(entry.handoff.id) }
            return taken
        }
        for entry in taken { entry.handoff.take() }
        return taken
    }

    /// How many held exchanges are registered (tests).
    var count: Int { state.withLock { $0.entries.count } }
}

/// A held exchange's registration and the leases a submission leased to it, delivered once after
/// its commit (a registration is always taken before it is delivered to); the exchange's wait is
/// woken when the registration is taken.
final class Handoff: Sendable {
    /// The registration's id (set once, at `hold`).
    let id: UInt64
    private enum State {
        case pending(waker: (@Sendable () -> Void)?, taken: Bool, waiting: [CheckedContinuation<[TaskLease], Never>])
        case delivered([TaskLease])
    }
    private let state = Mutex(State.pending(waker: nil, taken: false, waiting: []))

    init(id: UInt64) { self.id = id }

    /// A submission took the registration: the exchange's wait ends (now, or as it begins).
    func take() {
        let waker = state.withLock { state -> (@Sendable () -> Void)? in
            guard case .pending(let waker, _, let waiting) = state else { return nil }
            state = .pending(waker: waker, taken: true, waiting: waiting)
            return waker
        }
        waker?()
    }

    /// Hands over the leases (none: the claim found nothing, or the transaction failed).
    func deliver(_ leases: [TaskLease]) {
        let waiting = state.withLock { state -> [CheckedContinuation<[TaskLease], Never>] in
            guard case .pending(_, _, let waiting) = state else { return [] }
            state = .delivered(leases)
            return waiting
        }
        for continuation in waiting { continuation.resume(returning: leases) }
    }

    /// Calls `waker` once the registration is taken (at once if it is, or was delivered to).
    func onTaken(_ waker: @escaping @Sendable () -> Void) {
        let now = state.withLock { state -> Bool in
            guard case .pending(_, let taken, let waiting) = state else { return true }
            state = .pending(waker: waker, taken: taken, waiting: waiting)
            return taken
        }
        if now { waker() }
    }

    /// The leases, once delivered.
    var leases: [TaskLease] {
        get async {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> [TaskLease]? in
                    switch state {
                    case .delivered(let leases):
                        return leases
                    case .pending(let waker, let taken, let waiting):
                        state = .pending(waker: waker, taken: taken, waiting: waiting + [continuation])
                        return nil
                    }
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }
}
