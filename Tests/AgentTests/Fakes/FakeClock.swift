@testable import PaddockAgent
import Synchronization

/// A clock that moves only when the test says: sleeps end when `advance` passes their deadline.
final class FakeClock: AgentClock {
    private struct Sleeper {
        var deadline: Duration
        var requested: Duration
        var continuation: CheckedContinuation<Void, any Error>
    }
    private struct Watcher {
        var matches: @Sendable (Duration) -> Bool
        var continuation: CheckedContinuation<Void, Never>
    }
    private struct State {
        var elapsed: Duration = .zero
        var sleepers: [UInt64: Sleeper] = [:]
        var watchers: [Watcher] = []
        var next: UInt64 = 0
    }
    private enum Start { case sleeping([CheckedContinuation<Void, Never>]), cancelled, due }
    private let state = Mutex(State())
    private let origin = ContinuousClock.now

    var now: ContinuousClock.Instant { origin.advanced(by: state.withLock { $0.elapsed }) }

    func sleep(for duration: Duration) async throws { try await sleep(at: nil, for: duration) }

    /// Ends when `advance` reaches `deadline`; `sleeping` sees it as the time left when it started.
    func sleep(until deadline: ContinuousClock.Instant) async throws {
        try await sleep(at: deadline - origin, for: .zero)
    }

    /// A sleep until `end` (time since the origin) when given, else for `duration` from when it starts.
    private func sleep(at end: Duration?, for duration: Duration) async throws {
        let id = state.withLock { state in
            state.next += 1
            return state.next
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let start = state.withLock { state -> Start in
                    if Task.isCancelled { return .cancelled }
                    let deadline = end ?? state.elapsed + duration
                    let duration = deadline - state.elapsed
                    if duration <= .zero { return .due }
                    state.sleepers[id] = Sleeper(deadline: deadline, requested: duration, continuation: continuation)
                    var woken: [CheckedContinuation<Void, Never>] = []
                    state.watchers.removeAll { watcher in
                        guard watcher.matches(duration) else { return false }
                        woken.append(watcher.continuation)
                        return true
                    }
                    return .sleeping(woken)
                }
                switch start {
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .due: continuation.resume()
                case .sleeping(let woken): woken.forEach { $0.resume() }
                }
            }
        } onCancel: {
            state.withLock { $0.sleepers.removeValue(forKey: id) }?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves the clock on by `duration`: every sleep whose deadline is passed ends, earliest first.
    func advance(by duration: Duration) {
        let due = state.withLock { state -> [Sleeper] in
            state.elapsed += duration
            let due = state.sleepers.filter { $0.value.deadline <= state.elapsed }
            for id in due.keys { state.sleepers[id] = nil }
            return due.values.sorted { $0.deadline < $1.deadline }
        }
        due.forEach { $0.continuation.resume() }
    }

    /// Returns once something sleeps (or already sleeps) for a duration that `matches`.
    func sleeping(for matches: @escaping @Sendable (Duration) -> Bool) async {
        await withCheckedContinuation { continuation in
            let already = state.withLock { state in
                if state.sleepers.values.contains(where: { matches($0.requested) }) { return true }
                state.watchers.append(Watcher(matches: matches, continuation: continuation))
                return false
            }
            if already { continuation.resume() }
        }
    }

    /// The durations of the sleeps not ended yet.
    var sleeps: [Duration] { state.withLock { $0.sleepers.values.map(\.requested) } }
}
