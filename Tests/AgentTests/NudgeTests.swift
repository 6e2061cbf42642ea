@testable import PaddockAgent
import Synchronization
import Testing

/// The nudge's waits share their timers: each still ends at its own deadline, a poke ends them all
/// at once, and a timer left behind fires for nothing.
@Suite struct NudgeTests {
    /// Returns once `condition` holds (the waits register on other tasks).
    func until(_ condition: () -> Bool) async {
        while !condition() { await Task.yield() }
    }

    @Test func eachWaitEndsAtItsOwnDeadlineWithTheTimersShared() async throws {
        let clock = FakeClock()
        let nudge = Nudge(clock: clock)
        let seen = nudge.generation
        let origin = clock.now
        func waiting(_ timeout: Duration) -> Task<Duration, Never> {
            Task {
                await nudge.wait(since: seen, timeout: timeout)
                return clock.now - origin
            }
        }
        let long = waiting(.seconds(5))
        await until { nudge.waiting == 1 }
        let short = waiting(.seconds(1))
        await until { nudge.waiting == 2 }
        let middle = waiting(.seconds(3))
        await until { nudge.waiting == 3 }
        // One timer for the 5 s deadline, one for the earlier 1 s; the 3 s one waits behind the 1 s one.
        #expect(nudge.pendingTimers == 2)
        #expect(clock.sleeps.sorted() == [.seconds(1), .seconds(5)])

        clock.advance(by: .seconds(1))
        #expect(await short.value == .seconds(1))
        // The 1 s timer handed over to the 3 s deadline.
        await clock.sleeping { $0 == .seconds(2) }
        clock.advance(by: .seconds(2))
        #expect(await middle.value == .seconds(3))
        clock.advance(by: .seconds(2))
        #expect(await long.value == .seconds(5))
        await until { nudge.pendingTimers == 0 }
        #expect(nudge.waiting == 0)
    }

    @Test func aPokeEndsEveryWaitAndItsTimerFiresForNothing() async throws {
        let clock = FakeClock()
        let nudge = Nudge(clock: clock)
        let seen = nudge.generation
        let waits = (0..<3).map { _ in Task { await nudge.wait(since: seen, timeout: .seconds(1)) } }
        await until { nudge.waiting == 3 }
        #expect(nudge.pendingTimers == 1)
        nudge.poke()
        for wait in waits { await wait.value }
        // A wait on an old generation does not wait at all, and starts no timer.
        await nudge.wait(since: seen, timeout: .seconds(1))
        #expect(nudge.pendingTimers == 1)
        clock.advance(by: .seconds(1))
        await until { nudge.pendingTimers == 0 }
        #expect(clock.sleeps.isEmpty, "nothing waits: no next timer")
    }

    @Test func aCancelledWaitEndsAndAGoneNudgeCancelsItsTimer() async throws {
        let clock = FakeClock()
        var nudge: Nudge? = Nudge(clock: clock)
        let seen = try #require(nudge).generation
        let wait = Task { [nudge] in await nudge?.wait(since: seen, timeout: .seconds(60)) }
        await until { nudge?.waiting == 1 }
        wait.cancel()
        await wait.value
        #expect(nudge?.waiting == 0)
        #expect(clock.sleeps == [.seconds(60)])
        nudge = nil
        await until { clock.sleeps.isEmpty }
    }
}
