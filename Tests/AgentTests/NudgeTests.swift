@testable import PaddockAgent
import Testing

/// The exchange loop and the heartbeat wait on a `Nudge`: a poke, a deadline or a cancellation
/// ends the wait, whichever comes first, and none of them is ever missed.
@Suite(.timeLimit(.minutes(1))) struct NudgeTests {
    /// A deadline that has passed ends the wait at once. Its timer ends as soon as it starts: when the
    /// timer started before the waiter was in place, its wake-up found no one and the wait lasted
    /// until the next poke (the heartbeat's and the exchange tests' rare hangs).
    @Test func aWaitWhoseDeadlineHasPassedEndsAtOnce() async {
        let clock = FakeClock()
        let nudge = Nudge(clock: clock)
        for _ in 0..<500 {
            await nudge.wait(since: nudge.generation, until: clock.now)
            await nudge.wait(since: nudge.generation, timeout: .zero)
        }
        #expect(clock.sleeps.isEmpty)
    }

    /// A deadline worked out before the clock moved is kept: the wait ends when the clock reaches it,
    /// not a whole timeout after the timer happened to start.
    @Test func aWaitEndsAtItsDeadlineEvenWhenTheClockMovedBeforeItsTimerStarted() async {
        let clock = FakeClock()
        let nudge = Nudge(clock: clock)
        let deadline = clock.now + .milliseconds(10)
        clock.advance(by: .milliseconds(6))
        let waiting = Task { await nudge.wait(since: nudge.generation, until: deadline) }
        await clock.sleeping { $0 == .milliseconds(4) }
        clock.advance(by: .milliseconds(4))
        await waiting.value
        #expect(clock.sleeps.isEmpty)
    }

    /// A poke ends the wait before its deadline, and a poke made before the wait began is not missed.
    @Test func aPokeEndsTheWaitAndOneMadeBeforeItIsNotMissed() async {
        let clock = FakeClock()
        let nudge = Nudge(clock: clock)
        let seen = nudge.generation
        let waiting = Task { await nudge.wait(since: seen, timeout: .seconds(3600)) }
        await clock.sleeping { $0 == .seconds(3600) }
        nudge.poke()
        await waiting.value
        nudge.poke()
        await nudge.wait(since: seen, timeout: .seconds(3600))  // the generation moved: at once
        #expect(nudge.generation == seen + 2)
    }

    /// Cancelling the waiting task ends the wait.
    @Test func cancellingTheTaskEndsTheWait() async {
        let clock = FakeClock()
        let nudge = Nudge(clock: clock)
        let waiting = Task { await nudge.wait(since: nudge.generation, timeout: .seconds(3600)) }
        await clock.sleeping { $0 == .seconds(3600) }
        waiting.cancel()
        await waiting.value
    }
}
