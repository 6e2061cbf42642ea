import Foundation
import GRDB

/// The embedded default engine: one SQLite file in WAL mode on the system
/// libsqlite3, `synchronous=FULL` so that an acknowledged write survives a
/// power cut. One process writes; GRDB serialises writes on one connection,
/// and `GroupCommit` gathers the writes that arrive meanwhile into one
/// transaction (one fsync for all of them).
public final class SQLiteEngine: SQLEngine {
    public let dialect = SQLDialect(engine: .sqlite)
    public var relay: (any WakeRelay)? { nil }
    let pool: DatabasePool
    private let group: GroupCommit

    public init(path: String) throws {
        var config = Configuration()
        config.journalMode = .wal
        config.busyMode = .timeout(5)
        config.prepareDatabase { db in
            // Sub-journals of savepoints (every write runs in one) stay in memory: on disk each was a
            // temporary file created and unlinked per statement that might need rolling back.
            try db.execute(sql: "PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY")
        }
        pool = try DatabasePool(path: path, configuration: config)
        // GRDB turns WAL on after `prepareDatabase` and sets `synchronous = NORMAL` with it (commits
        // then reach the disk only at checkpoints: a power cut could lose acknowledged writes). Every
        // write goes through the pool's one writer connection: FULL there, after GRDB's setup.
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        try SQLiteSchema.migrator().migrate(pool)
        group = GroupCommit(pool: pool)
    }

    /// SQLite's master is its own database: its host's clock.
    public func databaseTime() async throws -> Date { Date() }

    public func read<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) throws -> T) async throws -> T {
        try await pool.read { db in try body(GRDBDatabase(db, writable: false)) }
    }

    public func write<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) throws -> T) async throws -> T {
        try await group.write(body)
    }

    public func ping() async throws {
        try await pool.read { db in _ = try Int.fetchOne(db, sql: "SELECT 1") }
    }

    public func close() async {}
}

/// A GRDB connection inside one of its transactions.
final class GRDBDatabase: SQLDatabase {
    let db: Database
    let writable: Bool
    var dialect: SQLDialect { SQLDialect(engine: .sqlite) }

    init(_ db: Database, writable: Bool) {
        self.db = db
        self.writable = writable
    }

    func fetchAll(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
        let statement = try db.cachedStatement(sql: sql)
        try statement.setArguments(Self.arguments(arguments))
        var columns: [String: Int] = [:]
        for (index, name) in statement.columnNames.enumerated() where columns[name] == nil { columns[name] = index }
        let cursor = try Row.fetchCursor(statement)
        var rows: [SQLRow] = []
        while let row = try cursor.next() {
            rows.append(SQLRow(columns: columns, values: row.databaseValues.map(Self.value)))
        }
        return rows
    }

    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int {
        // The store's writes are a few dozen fixed statements run for every task: prepared once per
        // connection and kept (GRDB's statement cache), not parsed again each time.
        let statement = try db.cachedStatement(sql: sql)
        try statement.execute(arguments: Self.arguments(arguments))
        return db.changesCount
    }

    static func arguments(_ values: [SQLValue]) -> StatementArguments {
        StatementArguments(values.map { value -> DatabaseValue in
            switch value {
            case .null: return .null
            case .integer(let v): return v.databaseValue
            case .real(let v): return v.databaseValue
            case .text(let v): return v.databaseValue
            case .blob(let v): return v.databaseValue
            }
        })
    }

    static func value(_ value: DatabaseValue) -> SQLValue {
        switch value.storage {
        case .null: return .null
        case .int64(let v): return .integer(v)
        case .double(let v): return .real(v)
        case .string(let v): return .text(v)
        case .blob(let v): return .blob(v)
        }
    }
}
