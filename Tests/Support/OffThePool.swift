import Foundation

/// Runs a blocking call (waiting for a child process, `initdb`, `psql`) on a thread of its own.
/// Swift concurrency shares as many threads as there are cores (two here): tests that block them
/// stall every other test's timers and long-polls in the same process, and on a busy 2-core
/// machine a deadline of 2 s was then seen to take 33.
public func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}
