import Foundation
import PaddockProtocol
import Synchronization

/// Tasks by state, counted once when the master starts and then kept as its writes commit, so that
/// `/metrics` and `/v1/master` read counters instead of counting every task row (issue 16).
///
/// Every move of a task's state is recorded as an event (`SQLStore.insertEvent`) and every new task
/// is inserted by a submission: both note their change on the transaction's `TallyingDatabase`,
/// and the change is applied here once that transaction has committed (a write rolled back, or
/// retried after a conflict, counts only as it finally committed). Another master's writes are not
/// seen: on PostgreSQL, where masters share the database, the counts are taken again from the rows
/// at most every `recountEvery`.
public final class TaskTally: Sendable {
    private struct State {
        var counts: [TaskState: Int] = [:]
        var countedAt: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    static let recountEvery: Duration = .seconds(60)

    public init() {}

    /// The counts, or nil before they were first taken.
    public var counts: [TaskState: Int]? {
        state.withLock { $0.countedAt == nil ? nil : $0.counts }
    }

    /// Whether the counts were taken at least `age` ago (or never).
    func isOlder(than age: Duration, now: ContinuousClock.Instant = .now) -> Bool {
        state.withLock { $0.countedAt.map { now - $0 >= age } ?? true }
    }

    /// The counts as read from the rows.
    func set(_ counts: [TaskState: Int], at instant: ContinuousClock.Instant = .now) {
        state.withLock { $0 = State(counts: counts, countedAt: instant) }
    }

    /// A committed transaction's changes (ignored until the counts were first taken).
    func apply(_ changes: [TaskState: Int]) {
        guard !changes.isEmpty else { return }
        state.withLock { state in
            guard state.countedAt != nil else { return }
            for (taskState, change) in changes { state.counts[taskState, default: 0] += change }
        }
    }
}
