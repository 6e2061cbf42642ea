import Foundation
@testable import PaddockAgent
import Synchronization
import Testing

/// The threads that block on a task's pipe and exit, kept for the next runs.
@Suite struct BlockingThreadsTests {
    /// A call after another has ended runs on the thread that ran it; a call made while every thread
    /// is blocked gets a new thread at once (it would otherwise wait behind a task that runs for hours).
    @Test func anIdleThreadIsReusedAndABusyPoolGrows() async throws {
        let threads = BlockingThreads(keepIdle: 4, idleLimit: .seconds(600))
        let first = await Self.threadOf(threads)
        #expect(try await ContainmentTests.eventually { threads.idleCount == 1 })
        #expect(await Self.threadOf(threads) == first, "the idle thread took the next call")
        #expect(try await ContainmentTests.eventually { threads.idleCount == 1 })
        #expect(threads.liveCount == 1)

        // One call blocks until the second has run: the second must not need the first's thread.
        // Which of the two the idle thread takes is not fixed: a new thread started for the second
        // call may take the first call from the queue before the idle one wakes (each thread takes
        // whatever call is first). Either way they run on two threads, one of them the idle one.
        let release = DispatchSemaphore(value: 0)
        let blockedThread = Mutex<pthread_t?>(nil)
        threads.run {
            blockedThread.withLock { $0 = pthread_self() }
            release.wait()
        }
        let second = await Self.threadOf(threads)
        release.signal()
        #expect(try await ContainmentTests.eventually { blockedThread.withLock { $0 } != nil })
        let blocked = try #require(blockedThread.withLock { $0 })
        #expect(blocked != second, "the second call did not wait behind the blocked one")
        #expect(blocked == first || second == first, "the idle thread took one of them")
        #expect(try await ContainmentTests.eventually { threads.idleCount == 2 })
        #expect(threads.liveCount == 2)
    }

    /// Past `keepIdle`, a thread whose call ended ends too; an idle one ends after `idleLimit`.
    @Test func threadsBeyondTheIdleOnesAndIdleOnesPastTheirLimitEnd() async throws {
        let kept = BlockingThreads(keepIdle: 1, idleLimit: .seconds(600))
        let release = DispatchSemaphore(value: 0)
        for _ in 0..<3 { kept.run { release.wait() } }
        #expect(kept.liveCount == 3, "three blocked calls, three threads")
        for _ in 0..<3 { release.signal() }
        #expect(try await ContainmentTests.eventually { kept.liveCount == 1 && kept.idleCount == 1 },
                "two of three end, one stays idle")

        let brief = BlockingThreads(keepIdle: 4, idleLimit: .milliseconds(50))
        _ = await Self.threadOf(brief)
        #expect(try await ContainmentTests.eventually { brief.liveCount == 0 }, "the idle thread ended after its limit")
        #expect(brief.idleCount == 0)
        _ = await Self.threadOf(brief)
        #expect(try await ContainmentTests.eventually { brief.liveCount == 0 }, "a later call's thread ends too")
    }

    static func threadOf(_ threads: BlockingThreads) async -> pthread_t {
        await withCheckedContinuation { continuation in
            threads.run { continuation.resume(returning: pthread_self()) }
        }
    }
}
