import Synchronization

/// Tells the exchange loop that something changed (a report to send, room freed, the agent
/// leaving). A generation counter makes a poke between "look" and "wait" impossible to miss.
final class Nudge: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var next: UInt64 = 0
    }
    private let state = Mutex(State())
    /// What `wait`'s timeouts are measured on.
    let clock: any AgentClock

    init(clock: any AgentClock) { self.clock = clock }

    var generation: UInt64 { state.withLock { $0.generation } }

    func poke() {
        let woken = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.generation &+= 1
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        woken.forEach { $0.resume() }
    }

    /// Returns once the generation moved past `seen`, after `timeout`, or when the task is cancelled.
    func wait(since seen: UInt64, timeout: Duration) async {
        await wait(since: seen, until: clock.now + timeout)
    }

    /// Returns once the generation moved past `seen`, at `deadline` on `clock`, or when the task is
    /// cancelled. A deadline, not a timeout: a caller that worked it out from the clock a moment ago
    /// (the time moved meanwhile) still wakes when it meant to.
    func wait(since seen: UInt64, until deadline: ContinuousClock.Instant) async {
        // Moved already: no timer to start and cancel (a poke often lands between look and wait).
        guard let id = state.withLock({ state -> UInt64? in
            guard state.generation == seen else { return nil }
            state.next &+= 1
            return state.next
        }) else { return }
        var timer: Task<Void, Never>?
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let waiting = state.withLock { state -> Bool in
                    guard state.generation == seen, !Task.isCancelled else { return false }
                    state.waiters[id] = continuation
                    return true
                }
                guard waiting else { return continuation.resume() }
                // Started only once the waiter is in place: a timer that ended before (a deadline
                // already passed, a short one on a busy machine) would find no one to wake, and the
                // wait would last until the next poke.
                timer = Task { [weak self, clock] in
                    try? await clock.sleep(until: deadline)
                    self?.resume(id)
                }
            }
        } onCancel: {
            resume(id)
        }
        timer?.cancel()
    }

    private func resume(_ id: UInt64) {
        state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
    }
}
