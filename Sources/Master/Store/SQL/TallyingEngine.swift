import Foundation
import PaddockProtocol
import Synchronization

/// An engine whose write transactions note how they change the tasks' states (on the
/// `TallyingDatabase` they are given) and apply that to a `TaskTally` once committed.
struct TallyingEngine: SQLEngine {
    let inner: any SQLEngine
    let tally: TaskTally

    var dialect: SQLDialect { inner.dialect }
    var relay: (any WakeRelay)? { inner.relay }

    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) throws -> T) async throws -> T {
        try await inner.read(body)
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) throws -> T) async throws -> T {
        try await write(lockingAgent: nil, body)
    }

    func write<T: Sendable>(lockingAgent agent: Int64, _ body: @escaping @Sendable (any SQLDatabase) throws -> T)
        async throws -> T {
        try await write(lockingAgent: .some(agent), body)
    }

    private func write<T: Sendable>(lockingAgent agent: Int64?, _ body: @escaping @Sendable (any SQLDatabase) throws -> T)
        async throws -> T {
        // A body may run more than once (PostgreSQL retries a transaction after a conflict): the last
        // run is the one that committed.
        let committed = Mutex<[TaskState: Int]>([:])
        let tallied = { @Sendable (db: any SQLDatabase) throws -> T in
            let tallying = TallyingDatabase(db)
            let value = try body(tallying)
            try tallying.flushRunWrites()
            try tallying.flushEvents()
            let changes = tallying.changes
            committed.withLock { $0 = changes }
            return value
        }
        let value = if let agent { try await inner.write(lockingAgent: agent, tallied) } else { try await inner.write(tallied) }
        tally.apply(committed.withLock { $0 })
        return value
    }

    func inserted(tasks: Int) { inner.inserted(tasks: tasks) }
    func ping() async throws { try await inner.ping() }
    func databaseTime() async throws -> Date { try await inner.databaseTime() }
    func close() async { await inner.close() }
}

/// One write transaction, as a `TallyingEngine` gives it to the store: the database's own, the
/// change in task counts by state that it makes, the tasks it queued, and (on PostgreSQL) the task
/// events and the runs' starts and finishes it has not written yet.
final class TallyingDatabase: SQLDatabase {
    struct Notes {
        var changes: [TaskState: Int] = [:]
        /// Tasks moved to `queued` (retried, released, unblocked): work that held claims may take.
        var queued: [TaskID] = []
        /// Task events not written yet, each its `eventColumns`' values.
        var events: [[SQLValue]] = []
        /// Task rows as this transaction has them (`SQLStore.readLeases`, then a start's move; a
        /// finish drops its task's). Notes too: a savepoint rolled back puts them back as they were,
        /// as its rows are put back.
        var leases: [TaskID: SQLStore.LeaseState] = [:]
        /// Successes whose dependents are looked up together (`defersDependents`), with their jobs.
        var succeeded: [(task: TaskID, job: JobID?)] = []
        /// Runs' starts and finishes not written yet (PostgreSQL), each its `SQLStore.RunWrite` row.
        var runWrites: [SQLStore.RunWrite: [[SQLValue]]] = [:]
    }
    private let inner: any SQLDatabase
    private(set) var notes = Notes()
    var changes: [TaskState: Int] { notes.changes }
    /// On PostgreSQL every statement is a round trip: a transaction's task events (three a task) are
    /// written together, once, before anything reads or changes `task_events` and at the end. They are
    /// notes like the others, so a savepoint rolled back drops those it made. SQLite runs statements
    /// in-process: each is written at once.
    let buffersEvents: Bool

    init(_ inner: any SQLDatabase) {
        self.inner = inner
        buffersEvents = inner.dialect.engine == .postgres
    }

    var dialect: SQLDialect { inner.dialect }
    var writable: Bool { inner.writable }
    func fetchAll(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
        try flushBefore(sql)
        return try inner.fetchAll(sql, arguments)
    }
    @discardableResult
    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int {
        try flushBefore(sql)
        return try inner.execute(sql, arguments)
    }

    func send(_ sql: String, _ arguments: [SQLValue]) throws {
        try flushBefore(sql)
        try inner.send(sql, arguments)
    }

    /// What is held back is written before a statement that reads or changes its table.
    private func flushBefore(_ sql: String) throws {
        if !notes.runWrites.isEmpty && sql.contains("tasks") { try flushRunWrites() }
        if !notes.events.isEmpty && sql.contains("task_events") { try flushEvents() }
    }

    /// On PostgreSQL an exchange's starts go in one statement, and its finishes in another
    /// (`SQLStore.RunWrite`), not one a report: held here until a statement reads or changes
    /// `tasks`, a savepoint, or the end of the write. Notes like the events. SQLite writes each at once.
    var holdsRunWrites: Bool { buffersEvents }

    func hold(_ write: SQLStore.RunWrite, _ row: [SQLValue]) { notes.runWrites[write, default: []].append(row) }

    /// Writes the starts and finishes held so far: the starts first (a run started and finished in
    /// one exchange is finished from `running`).
    func flushRunWrites() throws {
        guard !notes.runWrites.isEmpty else { return }
        let held = notes.runWrites
        notes.runWrites = [:]
        for write in SQLStore.RunWrite.allCases {
            let rows = held[write] ?? []
            for start in stride(from: 0, to: rows.count, by: SQLStore.RunWrite.rowsPerStatement) {
                let chunk = rows[start..<min(start + SQLStore.RunWrite.rowsPerStatement, rows.count)]
                try inner.send(write.sql(rows: chunk.count, dialect), chunk.flatMap { $0 })
            }
        }
    }
    func settle() throws { try inner.settle() }
    func savepointName() -> String { inner.savepointName() }

    static let eventColumns = "task_id, at, transition, from_state, to_state, agent_id, epoch, reason"
    /// Rows per INSERT: 8 values each, far under PostgreSQL's 65 535 parameters.
    static let eventsPerInsert = 256

    func event(_ values: [SQLValue]) { notes.events.append(values) }

    func knowLease(_ lease: SQLStore.LeaseState) { notes.leases[lease.id] = lease }
    func lease(_ id: TaskID) -> SQLStore.LeaseState? { notes.leases[id] }
    func forgetLease(_ id: TaskID) { notes.leases[id] = nil }

    /// While set (an exchange's reports), a success's dependents are not looked up at once but noted,
    /// and looked up for all of them in one statement (`SQLStore.unblockDependents(_:of:now:)`):
    /// on PostgreSQL a lookup is a round trip, one per finished task.
    var defersDependents = false
    func deferDependents(of task: TaskID, job: JobID?) { notes.succeeded.append((task, job)) }
    /// The successes noted since the last call.
    func takeSucceeded() -> [(task: TaskID, job: JobID?)] {
        defer { notes.succeeded = [] }
        return notes.succeeded
    }

    /// Writes the events noted so far.
    func flushEvents() throws {
        guard !notes.events.isEmpty else { return }
        let events = notes.events
        notes.events = []
        for start in stride(from: 0, to: events.count, by: Self.eventsPerInsert) {
            let chunk = events[start..<min(start + Self.eventsPerInsert, events.count)]
            let rows = Array(repeating: "(?, ?, ?, ?, ?, ?, ?, ?)", count: chunk.count).joined(separator: ", ")
            try inner.execute("INSERT INTO task_events (\(Self.eventColumns)) VALUES \(rows)", Array(chunk.joined()))
        }
    }

    func added(_ count: Int, _ state: TaskState) {
        guard count != 0 else { return }
        notes.changes[state, default: 0] += count
    }

    func moved(from: TaskState, to: TaskState) {
        guard from != to else { return }
        added(-1, from)
        added(1, to)
    }

    func queued(_ task: TaskID) { notes.queued.append(task) }

    /// For a savepoint rolled back: the notes as they stood when it began.
    func restore(_ notes: Notes) { self.notes = notes }
}

extension SQLDatabase {
    /// Notes on the transaction that `count` tasks were created in `state` (no-op outside a `TallyingEngine`).
    func tallyAdded(_ count: Int, _ state: TaskState) { (self as? TallyingDatabase)?.added(count, state) }
    /// Notes on the transaction that a task moved (no-op outside a `TallyingEngine`).
    func tallyMoved(from: TaskState, to: TaskState) { (self as? TallyingDatabase)?.moved(from: from, to: to) }
    /// Notes on the transaction that `task` was queued (no-op outside a `TallyingEngine`).
    func noteQueued(_ task: TaskID) { (self as? TallyingDatabase)?.queued(task) }
}
