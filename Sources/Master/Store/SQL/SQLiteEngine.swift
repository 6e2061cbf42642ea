import Foundation
import GRDB
import GRDBSQLite
import Synchronization

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

    /// `statements`, when given, is told of every statement each connection runs to its end (its
    /// text with `?` for arguments, and SQLite's count of its virtual-machine steps): the tests of
    /// the store's query plans and of its per-task cost read the store's work through it.
    public init(path: String, statements: (@Sendable (StatementRun) -> Void)? = nil) throws {
        var config = Configuration()
        config.journalMode = .wal
        config.busyMode = .timeout(5)
        config.prepareDatabase { db in
            // Sub-journals of savepoints (every write runs in one) stay in memory: on disk each was a
            // temporary file created and unlinked per statement that might need rolling back.
            try db.execute(sql: "PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY")
            if let statements { StatementTrace.install(on: db.sqliteConnection, statements) }
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

/// A statement SQLite ran to its end: its text (`?` for arguments) and its virtual-machine steps,
/// which grow with the rows and index entries it read.
public struct StatementRun: Sendable {
    public var sql: String
    public var steps: Int
}

/// SQLite's profile trace on one connection, reporting each statement's run. GRDB's own tracing
/// does not expose the statement handle, whose step counter this reads (and resets, so that each
/// run counts its own steps).
final class StatementTrace: Sendable {
    let report: @Sendable (StatementRun) -> Void

    private init(_ report: @escaping @Sendable (StatementRun) -> Void) { self.report = report }

    /// The trace stays retained for the process's life (one per connection opened with a
    /// `statements` observer: tests only), since SQLite calls it for as long as the connection lives.
    static func install(on connection: OpaquePointer?, _ report: @escaping @Sendable (StatementRun) -> Void) {
        let context = Unmanaged.passRetained(StatementTrace(report)).toOpaque()
        sqlite3_trace_v2(connection, UInt32(SQLITE_TRACE_PROFILE), { _, context, statement, _ in
            guard let context, let statement else { return 0 }
            let handle = OpaquePointer(statement)
            let sql = sqlite3_sql(handle).map { String(cString: $0) } ?? ""
            let steps = Int(sqlite3_stmt_status(handle, SQLITE_STMTSTATUS_VM_STEP, 1))
            Unmanaged<StatementTrace>.fromOpaque(context).takeUnretainedValue().report(StatementRun(sql: sql, steps: steps))
            return 0
        }, context)
    }
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
        let columns = Self.columns(of: statement, sql: sql)
        var rows: [SQLRow] = []
        try run(statement, sql, arguments) { handle in
            let count = Int(sqlite3_column_count(handle))
            var values: [SQLValue] = []
            values.reserveCapacity(count)
            for index in 0..<Int32(count) { values.append(Self.column(handle, index)) }
            rows.append(SQLRow(columns: columns, values: values))
        }
        return rows
    }

    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int {
        // The store's writes are a few dozen fixed statements run for every task: prepared once per
        // connection and kept (GRDB's statement cache), not parsed again each time. Transaction
        // control goes through GRDB, which keeps track of it.
        let statement = try db.cachedStatement(sql: sql)
        if Self.controlsTransaction(sql) {
            try statement.execute(arguments: Self.arguments(arguments))
            return db.changesCount
        }
        try run(statement, sql, arguments) { _ in }
        return db.changesCount
    }

    /// Binds `arguments` to `statement` and steps it to its end through SQLite's C API, `row` for
    /// each row. GRDB's own binding (`StatementArguments`, generic over each value) cost more than
    /// SQLite's work for the store's short statements.
    private func run(_ statement: Statement, _ sql: String, _ arguments: [SQLValue],
                     row: (OpaquePointer) throws -> Void) throws {
        let handle = statement.sqliteStatement
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
        defer { sqlite3_reset(handle) }
        guard Int(sqlite3_bind_parameter_count(handle)) == arguments.count else {
            throw DatabaseError(resultCode: .SQLITE_MISUSE,
                                message: "\(arguments.count) arguments for \(sqlite3_bind_parameter_count(handle)) parameters", sql: sql)
        }
        for (offset, value) in arguments.enumerated() {
            let index = Int32(offset + 1)
            let code: Int32 = switch value {
            case .null: sqlite3_bind_null(handle, index)
            case .integer(let v): sqlite3_bind_int64(handle, index, v)
            case .real(let v): sqlite3_bind_double(handle, index, v)
            case .text(let v): sqlite3_bind_text(handle, index, v, -1, Self.transient)
            case .blob(let v): v.withUnsafeBytes { sqlite3_bind_blob(handle, index, $0.baseAddress, Int32($0.count), Self.transient) }
            }
            guard code == SQLITE_OK else { throw error(code, sql) }
        }
        while true {
            let code = sqlite3_step(handle)
            switch code {
            case SQLITE_ROW: try row(handle)
            case SQLITE_DONE: return
            default: throw error(code, sql)
            }
        }
    }

    private func error(_ code: Int32, _ sql: String) -> DatabaseError {
        let message = db.sqliteConnection.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) }
        return DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: sql)
    }

    private static func controlsTransaction(_ sql: String) -> Bool {
        ["SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT", "END"].contains { sql.hasPrefix($0) }
    }

    /// SQLite copies what it is given (the Swift string or data may not outlive the call).
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    private static func column(_ handle: OpaquePointer, _ index: Int32) -> SQLValue {
        switch sqlite3_column_type(handle, index) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(handle, index))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(handle, index))
        case SQLITE_TEXT:
            guard let text = sqlite3_column_text(handle, index) else { return .text("") }
            let count = Int(sqlite3_column_bytes(handle, index))
            return .text(String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self))
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(handle, index))
            guard let bytes = sqlite3_column_blob(handle, index), count > 0 else { return .blob(Data()) }
            return .blob(Data(bytes: bytes, count: count))
        default: return .null
        }
    }

    /// Column names to indexes, per statement text: the same for every run of it (the schema does not
    /// change once the store is open; a different column count makes them read again).
    private static let columnCache = Mutex<[String: (count: Int, columns: [String: Int])]>([:])

    private static func columns(of statement: Statement, sql: String) -> [String: Int] {
        let count = Int(sqlite3_column_count(statement.sqliteStatement))
        if let known = columnCache.withLock({ $0[sql] }), known.count == count { return known.columns }
        var columns: [String: Int] = [:]
        for (index, name) in statement.columnNames.enumerated() where columns[name] == nil { columns[name] = index }
        columnCache.withLock { cache in
            if cache.count > 4_096 { cache.removeAll() }  // the store's statements are a few hundred
            cache[sql] = (count, columns)
        }
        return columns
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
}
