import Synchronization

/// Tells the exchange loop that something changed (a report to send, room freed, the agent
/// leaving). A generation counter makes a poke between "look" and "wait" impossible to miss.
///
/// Waits end on a poke far more often than on their timeout, and a timer of its own for each wait
/// (a task, a runtime timer armed and cancelled) cost a busy agent a few thread wake-ups a task.
/// So timers are shared: one is started only for a deadline earlier than every timer already
/// pending; a timer that fires ends the waits that are due and starts the next one only if no
/// pending timer comes first. A wait that ends early leaves its timer to fire for nothing.
final class Nudge: Sendable {
    private struct Waiter {
        var deadline: ContinuousClock.Instant
        var continuation: CheckedContinuation<Void, Never>
    }
    private struct State {
        var generation: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
        var next: UInt64 = 0
        /// The timers started and not fired yet, by deadline.
        var timers: [(deadline: ContinuousClock.Instant, task: Task<Void, Never>)] = []
    }
    private let state = Mutex(State())
    /// What `wait`'s timeouts are measured on.
    let clock: any AgentClock

    init(clock: any AgentClock) { self.clock = clock }

    /// Its timers would sleep on for nothing (a test's clock may never reach them).
    deinit { state.withLock { $0.timers.forEach { $0.task.cancel() } } }

    var generation: UInt64 { state.withLock { $0.generation } }
    /// How many waits are waiting, and how many timers are pending (for tests).
    var waiting: Int { state.withLock { $0.waiters.count } }
    var pendingTimers: Int { state.withLock { $0.timers.count } }

    func poke() {
        let woken = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.generation &+= 1
            defer { state.waiters.removeAll() }
            return state.waiters.values.map(\.continuation)
        }
        woken.forEach { $0.resume() }
    }

    /// Returns once the generation moved past `seen`, after `timeout`, or when the task is cancelled.
    func wait(since seen: UInt64, timeout: Duration) async {
        // Moved already: nothing to wait for (a poke often lands between look and wait).
        guard let id = state.withLock({ state -> UInt64? in
            guard state.generation == seen else { return nil }
            state.next &+= 1
            return state.next
        }) else { return }
        let deadline = clock.now.advanced(by: timeout)
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state -> Bool in
                    guard state.generation == seen, !Task.isCancelled else { return true }
                    state.waiters[id] = Waiter(deadline: deadline, continuation: continuation)
                    startTimer(until: deadline, &state)
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.continuation.resume()
        }
    }

    /// Starts a timer that ends the waits due by `deadline`, unless one pending fires by then.
    private func startTimer(until deadline: ContinuousClock.Instant, _ state: inout State) {
        guard state.timers.allSatisfy({ $0.deadline > deadline }) else { return }
        let task = Task { [weak self, clock] in
            // Cancelled only when the nudge is gone.
            guard (try? await clock.sleep(for: deadline - clock.now)) != nil else { return }
            self?.fire(deadline)
        }
        state.timers.append((deadline, task))
    }

    private func fire(_ deadline: ContinuousClock.Instant) {
        let now = clock.now
        let due = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            if let index = state.timers.firstIndex(where: { $0.deadline == deadline }) { state.timers.remove(at: index) }
            var due: [CheckedContinuation<Void, Never>] = []
            var earliest: ContinuousClock.Instant?
            for (id, waiter) in state.waiters {
                if waiter.deadline <= now {
                    due.append(waiter.continuation)
                    state.waiters[id] = nil
                } else if earliest.map({ waiter.deadline < $0 }) ?? true {
                    earliest = waiter.deadline
                }
            }
            if let earliest { startTimer(until: earliest, &state) }
            return due
        }
        due.forEach { $0.resume() }
    }
}
