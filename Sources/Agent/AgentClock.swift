import Foundation

/// The agent's time: what its loops sleep on (back-off, heartbeat intervals, a task's timeout, a stop's
/// grace, the outbox's log tick, the nudge's timeouts) and read deadlines from. The real one is
/// `ContinuousClock`; tests use one they move forward themselves, so nothing waits for real time.
protocol AgentClock: Sendable {
    var now: ContinuousClock.Instant { get }
    /// Returns after `duration` on this clock; throws `CancellationError` when the task is cancelled first.
    func sleep(for duration: Duration) async throws
    /// Returns at `deadline` on this clock (at once if it has passed); throws `CancellationError` when
    /// the task is cancelled first.
    func sleep(until deadline: ContinuousClock.Instant) async throws
}

extension ContinuousClock: AgentClock {
    func sleep(for duration: Duration) async throws { try await sleep(until: now.advanced(by: duration), tolerance: nil) }
    func sleep(until deadline: ContinuousClock.Instant) async throws { try await sleep(until: deadline, tolerance: nil) }
}

/// Exponential back-off with full jitter (AWS's recipe), capped.
struct Backoff {
    var attempt = 0
    var base = 0.1
    var cap = 5.0

    mutating func next() -> Duration {
        let ceiling = min(cap, base * pow(2, Double(attempt)))
        attempt += 1
        return .milliseconds(Int(Double.random(in: ceiling / 2...ceiling) * 1000))
    }

    mutating func sleep(on clock: any AgentClock) async throws { try await clock.sleep(for: next()) }
    mutating func reset() { attempt = 0 }
}
