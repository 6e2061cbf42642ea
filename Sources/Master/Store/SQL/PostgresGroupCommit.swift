import Foundation
import Logging
import NIOPosix
import PostgresNIO
import Synchronization

/// Group commit for PostgreSQL: a master's concurrent writes share transactions and commits.
///
/// Writes run in up to `lanes` transactions at once, each on a connection of its own. A write that
/// finds a lane free runs alone, as it would without batching, and waits for nothing but its own
/// commit. When every lane is busy, writes queue; the next lane to come free takes everything queued
/// (at most `maxBatch`) into one transaction, each write in its own savepoint, and commits once: one
/// round trip and one WAL flush for them all. Under load the batches grow by themselves.
///
/// Each write is answered only after the commit that holds it: an acknowledged write is committed, as
/// before. A write that throws rolls back only its own savepoint and gets its error. A write that
/// collides with another master's (deadlock, serialization failure, a duplicate key) is run again in a
/// later transaction; a commit that collides (the job counters are updated at commit) runs the whole
/// batch again. When the connection breaks, no write of the batch was acknowledged: each gets the
/// error (a 503 its client retries).
final class PostgresGroupCommit: Sendable {
    /// A queued write. `attempt` runs its body in the open transaction and returns how to answer
    /// its caller once that transaction has committed; `fail` answers a write that will not commit.
    struct Pending: Sendable {
        let attempt: @Sendable (any SQLDatabase) throws -> @Sendable () -> Void
        let fail: @Sendable (any Error) -> Void
        /// The agent whose row it locks first, if it says so: a batch runs such writes in agent order.
        var agent: Int64?
        var conflicts = 0
    }

    /// What one batch's transaction came to.
    struct BatchOutcome: Sendable {
        /// Committed: answer them.
        var committed: [@Sendable () -> Void] = []
        /// Collided: run them again.
        var again: [(Pending, TransactionConflict)] = []
        /// Refused by their own body (rolled back to their savepoint), or lost with the transaction.
        var failed: [(Pending, any Error)] = []
        /// The connection is no use after this (closed, or the transaction could not be ended).
        var broken = false
    }

    /// Most writes in one transaction: a batch still commits within milliseconds under a burst,
    /// and holds its row locks no longer than that.
    static let maxBatch = 64

    private let connections: PostgresConnections
    private let threads: NIOThreadPool
    private let logger: Logger
    let lanes: Int
    private let state = Mutex<(queue: [Pending], busy: Int)>(([], 0))
    private let counts = Mutex<(writes: Int, commits: Int)>((0, 0))

    init(connections: PostgresConnections, threads: NIOThreadPool, lanes: Int, logger: Logger) {
        self.connections = connections
        self.threads = threads
        self.lanes = max(1, lanes)
        self.logger = logger
    }

    /// Writes committed, and the commits that held them (fewer under load).
    var committed: (writes: Int, commits: Int) { counts.withLock { $0 } }
    /// Writes waiting for a lane, and the lanes running.
    var load: (queued: Int, busy: Int) { state.withLock { ($0.queue.count, $0.busy) } }

    func write<T: Sendable>(lockingAgent agent: Int64? = nil, _ body: @escaping @Sendable (any SQLDatabase) throws -> T)
        async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            enqueue(Pending(attempt: { db in
                let value = try body(db)
                return { continuation.resume(returning: value) }
            }, fail: { error in continuation.resume(throwing: error) }, agent: agent))
        }
    }

    private func enqueue(_ pending: Pending) {
        let start = state.withLock { state -> Bool in
            state.queue.append(pending)
            guard state.busy < lanes else { return false }
            state.busy += 1
            return true
        }
        if start { Task { await self.lane() } }
    }

    /// Runs batches until the queue is empty.
    private func lane() async {
        while true {
            let batch = state.withLock { state -> [Pending] in
                guard !state.queue.isEmpty else {
                    state.busy -= 1
                    return []
                }
                let taken = Array(state.queue.prefix(Self.maxBatch))
                state.queue.removeFirst(taken.count)
                return Self.ordered(taken)
            }
            guard !batch.isEmpty else { return }
            await run(batch)
        }
    }

    private func run(_ batch: [Pending]) async {
        let connection: PostgresConnection
        do {
            connection = try await connections.acquire()
        } catch {
            for pending in batch { pending.fail(error) }
            return
        }
        let logger = self.logger
        let outcome: BatchOutcome
        do {
            outcome = try await threads.runIfActive { Self.transaction(batch, on: connection, logger: logger) }
        } catch {
            // The thread pool is shut down: the master is stopping.
            await connections.release(connection)
            for pending in batch { pending.fail(DatabaseUnreachable(description: "the master is shutting down")) }
            return
        }
        await connections.release(connection, broken: outcome.broken || connection.isClosed)
        if !outcome.committed.isEmpty {
            counts.withLock { $0.writes += outcome.committed.count; $0.commits += 1 }
        }
        for answer in outcome.committed { answer() }
        for (pending, error) in outcome.failed { pending.fail(error) }
        for (pending, conflict) in outcome.again { retry(pending, conflict) }
    }

    /// The writes that say which agent's row they lock first in that agent order, before the others
    /// (in the order they came). Each of them takes its agent's row, then that agent's tasks: two
    /// batches whose writes came in opposite orders (agent A then B, B then A) would hold one row
    /// each and wait for the other's, a deadlock PostgreSQL breaks only after its deadlock_timeout
    /// (1 s), every write of one batch then run again. In one order, one waits for the other's commit.
    static func ordered(_ batch: [Pending]) -> [Pending] {
        guard batch.count > 1 else { return batch }
        let keyed = batch.enumerated().compactMap { item in item.element.agent.map { ($0, item.offset) } }
        let ordered = keyed.sorted { $0 < $1 }.map { batch[$0.1] }
        return ordered + batch.filter { $0.agent == nil }
    }

    /// A collided write runs again after a short random pause, as a whole transaction of its own
    /// would; the same refusal again and again is no race but a real one, and is reported.
    private func retry(_ pending: Pending, _ conflict: TransactionConflict) {
        var pending = pending
        pending.conflicts += 1
        if let error = conflict.giveUp(after: pending.conflicts) { return pending.fail(error) }
        let pause = TransactionConflict.pause(after: pending.conflicts)
        Task {
            try? await Task.sleep(for: pause)
            self.enqueue(pending)
        }
    }

    /// One transaction on the calling (pool) thread: every write of the batch, then one commit.
    /// A batch of one needs no savepoint: its failure rolls the whole transaction back.
    static func transaction(_ batch: [Pending], on connection: PostgresConnection, logger: Logger) -> BatchOutcome {
        let db = PGTransaction(connection: connection, writable: true, logger: logger)
        var outcome = BatchOutcome()
        let alone = batch.count == 1
        /// Ends the transaction without committing: `ran` were not committed, `rest` never ran; those
        /// that collided or were refused before keep their outcome.
        func abandon(_ error: any Error, ran: [Pending], rest: ArraySlice<Pending>) -> BatchOutcome {
            var lost = BatchOutcome(again: outcome.again, failed: outcome.failed)
            var rolledBack = false
            if !(error is DatabaseUnreachable) { rolledBack = (try? db.execute("ROLLBACK", [])) != nil }
            lost.broken = !rolledBack || connection.isClosed
            let unanswered = ran + rest
            if let conflict = error as? TransactionConflict {
                lost.again += unanswered.map { ($0, conflict) }
            } else {
                lost.failed += unanswered.map { ($0, error) }
            }
            return lost
        }
        do {
            try db.send("BEGIN")
        } catch {
            return abandon(error, ran: [], rest: batch[...])
        }
        var ran: [Pending] = []
        for (index, pending) in batch.enumerated() {
            do {
                if !alone { try db.send("SAVEPOINT request_\(index)") }
            } catch {
                return abandon(error, ran: ran, rest: batch[index...])
            }
            do {
                let answer = try pending.attempt(db)
                try db.settle()  // its statements' errors are its own, not the next write's
                if !alone { try db.send("RELEASE SAVEPOINT request_\(index)") }
                outcome.committed.append(answer)
                ran.append(pending)
            } catch {
                if alone {
                    // Nothing else rides on this transaction: end it, and say why.
                    return abandon(error, ran: [pending], rest: [])
                }
                // Only this write's changes go; the batch's transaction stands, unless it cannot. A
                // failure among the statements it sent and did not wait for is the cause (a collision
                // to run it again for, say), not what the body threw after it. Each savepoint has a
                // name of its own: had the release of the write before failed, the rollback would
                // fail rather than go back to that write's savepoint and undo it.
                var error = error
                do { try db.settle() } catch let sent { error = sent }
                do {
                    _ = try db.execute("ROLLBACK TO SAVEPOINT request_\(index)", [])
                    _ = try db.execute("RELEASE SAVEPOINT request_\(index)", [])
                } catch let lost {
                    outcome.failed.append((pending, error))
                    return abandon(lost, ran: ran, rest: batch[(index + 1)...])
                }
                if let conflict = error as? TransactionConflict {
                    outcome.again.append((pending, conflict))
                } else {
                    outcome.failed.append((pending, error))
                }
            }
        }
        do {
            _ = try db.execute("COMMIT", [])
        } catch {
            return abandon(error, ran: ran, rest: [])
        }
        return outcome
    }
}
