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
        // Moved already: no timer to start and cancel (a poke often lands between look and wait).
        guard let id = state.withLock({ state -> UInt64? in
            guard state.generation == seen else { return nil }
            state.next &+= 1
            return state.next
        }) else { return }
        let timer = Task { [weak self, clock] in
            try? await clock.sleep(for: timeout)
            self?.resume(id)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state -> Bool in
                    guard state.generation == seen, !Task.isCancelled else { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            resume(id)
        }
        timer.cancel()
    }

    private func resume(_ id: UInt64) {
        state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
    }
}
