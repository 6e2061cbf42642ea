import Foundation
@testable import PaddockAgent
import Synchronization
import Testing

/// The threads that block on a task's pipe and exit, kept for the next runs.
@Suite struct BlockingThreadsTests {
    /// A call after another has ended runs on the thread that ran it; a call made while every thread
    /// is blocked gets a new thread at once (it would otherwise wait behind a task that runs for hours).
    @Test func anIdleThreadIsReusedAndABusyPoolGrows() async throws {
        let threads = BlockingThreads(keepIdle: 4, idleLimit: .seconds(60))
        let first = await Self.threadOf(threads)
        #expect(try await ContainmentTests.eventually { threads.idleCount == 1 })
        #expect(await Self.threadOf(threads) == first, "the idle thread took the next call")

        // One call blocks until the second has run: the second must not need the first's thread.
        let release = DispatchSemaphore(value: 0)
        let blockedThread = Mutex<pthread_t?>(nil)
        threads.run {
            blockedThread.withLock { $0 = pthread_self() }
            release.wait()
        }
        let second = await Self.threadOf(threads)
        release.signal()
        #expect(try await ContainmentTests.eventually { blockedThread.withLock { $0 } != nil })
        #expect(blockedThread.withLock { $0 } != second)
        #expect(try await ContainmentTests.eventually { threads.idleCount == 2 })
    }

    /// Idle threads past their limit end; at most `keepIdle` stay.
    @Test func idleThreadsEnd() async throws {
        let threads = BlockingThreads(keepIdle: 1, idleLimit: .milliseconds(50))
        let release = DispatchSemaphore(value: 0)
        for _ in 0..<3 { threads.run { release.wait() } }
        for _ in 0..<3 { release.signal() }
        var mostIdle = 0
        #expect(try await ContainmentTests.eventually {
            mostIdle = max(mostIdle, threads.idleCount)
            return threads.idleCount == 0
        }, "the idle thread ends after its idle limit")
        #expect(mostIdle <= 1, "at most one of the three stayed idle")
        #expect(await Self.threadOf(threads) != 0, "a call after that gets a new thread")
    }

    static func threadOf(_ threads: BlockingThreads) async -> pthread_t {
        await withCheckedContinuation { continuation in
            threads.run { continuation.resume(returning: pthread_self()) }
        }
    }
}
