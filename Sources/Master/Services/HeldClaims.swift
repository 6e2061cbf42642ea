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
/// registrations its new work fits (`take`, on the writer's thread, inside the transaction) and,
/// once its commit is known, delivers each its leases (none if the transaction failed, or if the
/// claim found nothing after all); a taken registration can no longer be withdrawn, so its exchange
/// waits for that delivery and answers those leases. Only this master's held exchanges are taken:
/// other masters' are woken through the relay and claim as before.
public final class HeldClaims: Sendable {
    /// A held exchange's claim, as it would run it.
    struct Entry: Sendable {
        let agent: AgentID
        /// The held exchange's order; its clock and lease end are set when a submission takes it.
        let order: ClaimOrder
        let leaseTimeout: TimeInterval
        let room: ClaimRoom
        let handoff: Handoff
    }

    /// A registration, withdrawn by its exchange when its wait ends.
    struct Ticket: Sendable {
        let id: UInt64
        let handoff: Handoff
    }

    private struct State {
        var entries: [UInt64: Entry] = [:]
        var next: UInt64 = 0
    }
    private let state = Mutex(State())

    public init() {}

    /// Registers a held exchange that waits for work fitting `room`.
    func hold(_ order: ClaimOrder, leaseTimeout: TimeInterval, room: ClaimRoom) -> Ticket {
        let handoff = Handoff()
        let id = state.withLock { state in
            let id = state.next
            state.next &+= 1
            state.entries[id] = Entry(agent: order.agent, order: order, leaseTimeout: leaseTimeout, room: room,
                                      handoff: handoff)
            return id
        }
        return Ticket(id: id, handoff: handoff)
    }

    /// Ends a registration: true when it was still registered, false when a submission took it (its
    /// leases then come through the ticket's handoff).
    func withdraw(_ ticket: Ticket) -> Bool {
        state.withLock { $0.entries.removeValue(forKey: ticket.id) != nil }
    }

    /// Takes the registrations `work` fits, oldest first, at most one per new task and one per
    /// agent (as `WakePlan` wakes held claims): each is the submission's to deliver to.
    func take(for work: NewWork) -> [Entry] {
        guard !work.isEmpty, !work.isAnything, let shapes = work.shapes else { return [] }
        return state.withLock { state in
            var taken: [Entry] = []
            var agents: Set<AgentID> = []
            for id in state.entries.keys.sorted() where taken.count < work.count {
                guard let entry = state.entries[id], !agents.contains(entry.agent),
                      shapes.contains(where: entry.room.takes) else { continue }
                state.entries[id] = nil
                agents.insert(entry.agent)
                taken.append(entry)
            }
            return taken
        }
    }

    /// How many held exchanges are registered (tests).
    var count: Int { state.withLock { $0.entries.count } }
}

/// The leases a submission leased to one held exchange, delivered once after its commit; the
/// exchange's wait is woken by the delivery.
final class Handoff: Sendable {
    private enum State {
        case pending(waker: (@Sendable () -> Void)?, waiting: CheckedContinuation<[TaskLease], Never>?)
        case delivered([TaskLease])
    }
    private let state = Mutex(State.pending(waker: nil, waiting: nil))

    /// Hands over the leases (none: the claim found nothing, or the transaction failed).
    func deliver(_ leases: [TaskLease]) {
        let (waker, waiting) = state.withLock { state -> ((@Sendable () -> Void)?, CheckedContinuation<[TaskLease], Never>?) in
            guard case .pending(let waker, let waiting) = state else { return (nil, nil) }
            state = .delivered(leases)
            return (waker, waiting)
        }
        waker?()
        waiting?.resume(returning: leases)
    }

    /// Calls `waker` once the leases are delivered (at once if they are).
    func onDelivery(_ waker: @escaping @Sendable () -> Void) {
        let delivered = state.withLock { state -> Bool in
            guard case .pending(_, let waiting) = state else { return true }
            state = .pending(waker: waker, waiting: waiting)
            return false
        }
        if delivered { waker() }
    }

    /// The leases, once delivered.
    var leases: [TaskLease] {
        get async {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> [TaskLease]? in
                    switch state {
                    case .delivered(let leases):
                        return leases
                    case .pending(let waker, _):
                        state = .pending(waker: waker, waiting: continuation)
                        return nil
                    }
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }
}
