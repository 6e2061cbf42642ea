import Foundation

/// One open transaction on a database engine, as the store's logic sees it.
/// The store's SQL is written once, with `?` placeholders, in the subset that
/// SQLite and PostgreSQL share; the few places where they differ ask `dialect`.
public protocol SQLDatabase: AnyObject {
    var dialect: SQLDialect { get }
    /// True inside a transaction that may write: row locks are taken only there.
    var writable: Bool { get }
    func fetchAll(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow]
    /// Runs a statement; returns how many rows it changed.
    @discardableResult
    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int
    /// Runs a statement whose answer nothing waits for (`SAVEPOINT`, `RELEASE`, an UPDATE whose row
    /// count nobody reads). PostgreSQL sends it and goes on: its error, if any, is thrown by the next
    /// statement that is waited for (a `ROLLBACK TO SAVEPOINT` included), which PostgreSQL runs after
    /// it, or by `settle`. SQLite runs it at once.
    func send(_ sql: String, _ arguments: [SQLValue]) throws
    /// Waits for the statements sent and not answered yet; throws the first one's error. A write
    /// settles before it is answered: its errors are its own, not the next write's in a shared
    /// transaction.
    func settle() throws
    /// A name for the next savepoint, unused in this transaction on PostgreSQL: a `RELEASE` is sent
    /// without waiting, and if it failed, a `ROLLBACK TO` a name shared with the savepoint it was to
    /// release would go back to that one and silently undo a part already answered; with a name of
    /// its own it fails, and the transaction with it.
    func savepointName() -> String
}

extension SQLDatabase {
    public func send(_ sql: String, _ arguments: [SQLValue]) throws { try execute(sql, arguments) }
    public func send(_ sql: String) throws { try send(sql, []) }
    public func settle() throws {}
    public func savepointName() -> String { "part" }
    /// `send` with the store's bindable values.
    public func send(sql: String, arguments: [any SQLBindable]) throws { try send(sql, arguments.map(\.sqlValue)) }
}

/// Where the two engines' SQL differs.
public struct SQLDialect: Sendable {
    public enum Engine: String, Sendable { case sqlite, postgres }
    public let engine: Engine

    /// The scalar maximum of several values: `MAX(a, b)` in SQLite, `GREATEST(a, b)` in PostgreSQL.
    public var greatest: String { engine == .sqlite ? "MAX" : "GREATEST" }

    /// The whole seconds of a non-negative number of seconds, rounded down: SQLite's CAST truncates,
    /// PostgreSQL's rounds to the nearest (a run that ended at :59.5 would count in the next minute).
    public func wholeSeconds(_ expression: String) -> String {
        engine == .sqlite ? "CAST(\(expression) AS INTEGER)" : "CAST(FLOOR(\(expression)) AS BIGINT)"
    }

    /// How many queued candidates a claim looks at: the global window, and per job with queued work.
    /// PostgreSQL locks each candidate it reads (SKIP LOCKED), so it reads fewer.
    public var claimWindow: (global: Int, jobs: Int, perJob: Int) {
        engine == .sqlite ? (512, 64, 16) : (128, 32, 8)
    }
}

extension SQLDatabase {
    /// ` FOR UPDATE` in a PostgreSQL write transaction: read-modify-write of a row holds its lock
    /// until commit, so two masters serialise on it. SQLite has one writer: nothing to add.
    public var lockRows: String { dialect.engine == .postgres && writable ? " FOR UPDATE" : "" }

    /// ` FOR UPDATE [OF table] SKIP LOCKED` in a PostgreSQL write transaction: rows another
    /// master is claiming are passed over instead of waited for.
    public func skipLocked(of table: String? = nil) -> String {
        guard dialect.engine == .postgres && writable else { return "" }
        return " FOR UPDATE" + (table.map { " OF \($0)" } ?? "") + " SKIP LOCKED"
    }

    @discardableResult
    public func execute(sql: String, arguments: [any SQLBindable] = []) throws -> Int {
        try execute(sql, arguments.map(\.sqlValue))
    }

    /// `count` fresh ids for `table`, to insert rows whose ids other rows refer to in one go.
    /// SQLite has one writer: the ids after the table's high-water mark are free. PostgreSQL
    /// takes them from the identity sequence (not necessarily consecutive: other masters insert too).
    public func allocateIDs(_ table: String, count: Int) throws -> [Int64] {
        guard count > 0 else { return [] }
        switch dialect.engine {
        case .sqlite:
            let high: Int64 = try SQLRow.fetchOne(self, sql: """
                SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = ?), 0),
                           COALESCE((SELECT MAX(id) FROM \(table)), 0)) AS high
                """, arguments: [table])?["high"] ?? 0
            return (1...Int64(count)).map { high + $0 }
        case .postgres:
            return try Int64.fetchAll(self, sql: """
                SELECT nextval(pg_get_serial_sequence('\(table)', 'id')) FROM generate_series(1, ?)
                """, arguments: [count])
        }
    }

    /// Runs `body` inside a savepoint: when it throws, what it wrote is rolled back and the rest of
    /// the transaction stands (one refused report of an exchange must not undo the others).
    public func savepoint<T>(_ body: () throws -> T) throws -> T {
        try (self as? TallyingDatabase)?.flushRunWrites()  // what came before stands, whatever this part does
        let tallied = (self as? TallyingDatabase)?.notes  // task counts and queued tasks roll back with the rows
        let name = savepointName()
        try send("SAVEPOINT " + name)
        do {
            let value = try body()
            try send("RELEASE SAVEPOINT " + name)
            return value
        } catch {
            try execute(sql: "ROLLBACK TO SAVEPOINT " + name)
            try execute(sql: "RELEASE SAVEPOINT " + name)
            if let tallied { (self as? TallyingDatabase)?.restore(tallied) }
            throw error
        }
    }

    /// In PostgreSQL, takes a transaction-scoped advisory lock if free; SQLite has one writer: always true.
    public func tryAdvisoryLock(_ key: Int64) throws -> Bool {
        guard dialect.engine == .postgres else { return true }
        return try Bool.fetchOne(self, sql: "SELECT pg_try_advisory_xact_lock(?)", arguments: [key]) ?? false
    }
}

extension SQLRow {
    public static func fetchAll(_ db: any SQLDatabase, sql: String, arguments: [any SQLBindable] = []) throws -> [SQLRow] {
        try db.fetchAll(sql, arguments.map(\.sqlValue))
    }

    public static func fetchOne(_ db: any SQLDatabase, sql: String, arguments: [any SQLBindable] = []) throws -> SQLRow? {
        try db.fetchAll(sql, arguments.map(\.sqlValue)).first
    }
}

extension SQLDecodable {
    /// The first column of each row.
    public static func fetchAll(_ db: any SQLDatabase, sql: String, arguments: [any SQLBindable] = []) throws -> [Self] {
        try db.fetchAll(sql, arguments.map(\.sqlValue)).map { $0[0] }
    }

    /// The first column of the first row; nil when there is no row or it is NULL.
    public static func fetchOne(_ db: any SQLDatabase, sql: String, arguments: [any SQLBindable] = []) throws -> Self? {
        guard let row = try db.fetchAll(sql, arguments.map(\.sqlValue)).first, let first = row.values.first,
              first != .null else { return nil }
        guard let value = Self.decode(first) else { preconditionFailure("\(first) is not \(Self.self)") }
        return value
    }
}

/// A database engine under the store: runs a closure as one transaction.
/// `write` commits before it returns (the acknowledged write is durable).
public protocol SQLEngine: Sendable {
    var dialect: SQLDialect { get }
    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) throws -> T) async throws -> T
    func write<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) throws -> T) async throws -> T
    /// A write about one agent (an exchange, a claim, a heartbeat, a report): it locks that agent's
    /// row, or its tasks' rows, and no other agent's (a steal takes a victim's only if free). Where
    /// several writes share a transaction (PostgreSQL's group commit), these run in their agents'
    /// order, so that two such transactions do not take two agents' rows in opposite orders.
    func write<T: Sendable>(lockingAgent agent: Int64, _ body: @escaping @Sendable (any SQLDatabase) throws -> T)
        async throws -> T
    /// Throws `StoreUnavailable` when the database does not answer.
    func ping() async throws
    /// The database's clock now (SQLite: the host's wall clock).
    func databaseTime() async throws -> Date
    /// Cross-master wake-ups, for engines that several masters share.
    var relay: (any WakeRelay)? { get }
    /// Tells the engine that a committed submission added `tasks` tasks (PostgreSQL refreshes the
    /// planner's statistics when many were added).
    func inserted(tasks: Int)
    func close() async
}

extension SQLEngine {
    public func inserted(tasks: Int) {}
    public func write<T: Sendable>(lockingAgent agent: Int64, _ body: @escaping @Sendable (any SQLDatabase) throws -> T)
        async throws -> T {
        try await write(body)
    }
}
