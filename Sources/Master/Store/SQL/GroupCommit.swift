import Foundation
import GRDB
import Synchronization

/// Group commit for SQLite: the writes of concurrent requests (exchanges of many agents,
/// submissions, heartbeats) run in one transaction and are made durable by one commit, one fsync.
///
/// A write is queued; the one writer thread takes everything queued, runs each body in its own
/// savepoint (a body that throws rolls back only its own changes and gets its error), commits,
/// and only then answers each caller: an acknowledged write is committed, as before. While a batch
/// commits, the next one gathers: under load the batches grow by themselves, and alone a write
/// waits for nothing but its own commit.
final class GroupCommit: Sendable {
    /// A queued write: `run` runs its body inside the batch's transaction and returns what to tell
    /// its caller once the batch's commit is known; `fail` answers a write that never ran.
    struct Pending: Sendable {
        let run: @Sendable (Database) -> @Sendable (_ commit: (any Error)?) -> Void
        let fail: @Sendable (any Error) -> Void
    }

    private let pool: DatabasePool
    private let state = Mutex<(queue: [Pending], writing: Bool)>(([], false))
    /// The writer: one thread, since GRDB's writes block it for the transaction's length.
    private let writer = DispatchQueue(label: "paddock.sqlite.group-commit")
    /// Most writes in one transaction: a batch still commits within milliseconds under a burst.
    static let maxBatch = 512

    init(pool: DatabasePool) { self.pool = pool }

    func write<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let pending = Pending(run: { db in
                let result: Result<T, any Error>
                do {
                    var value: T?
                    try db.inSavepoint {
                        value = try body(GRDBDatabase(db, writable: true))
                        return .commit
                    }
                    guard let value else { throw DatabaseError(message: "a write returned nothing") }
                    result = .success(value)
                } catch {
                    result = .failure(error)
                }
                return { commitError in
                    if let commitError {
                        continuation.resume(throwing: commitError)
                    } else {
                        continuation.resume(with: result)
                    }
                }
            }, fail: { error in continuation.resume(throwing: error) })
            let start = state.withLock { state -> Bool in
                state.queue.append(pending)
                guard !state.writing else { return false }
                state.writing = true
                return true
            }
            if start { writer.async { self.drain() } }
        }
    }

    /// Runs batches until the queue is empty.
    private func drain() {
        while true {
            let batch = state.withLock { state -> [Pending] in
                guard !state.queue.isEmpty else {
                    state.writing = false
                    return []
                }
                let taken = Array(state.queue.prefix(Self.maxBatch))
                state.queue.removeFirst(taken.count)
                return taken
            }
            guard !batch.isEmpty else { return }
            var answers: [@Sendable ((any Error)?) -> Void] = []
            answers.reserveCapacity(batch.count)
            do {
                try pool.writeWithoutTransaction { db in
                    try db.inTransaction(.immediate) {
                        for pending in batch { answers.append(pending.run(db)) }
                        return .commit
                    }
                }
                for answer in answers { answer(nil) }
            } catch {
                // The commit itself failed (disk full, I/O error): nothing of the batch is durable.
                for answer in answers { answer(error) }
                for pending in batch.dropFirst(answers.count) { pending.fail(error) }
            }
        }
    }
}
