import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PaddockProtocol
import PostgresNIO
import Synchronization

/// The database could not be reached (down, restarting, network): the master
/// answers 503 and the caller retries; nothing was acknowledged.
public struct DatabaseUnreachable: StoreUnavailable, CustomStringConvertible {
    public var description: String
}

/// A statement PostgreSQL refused for a reason other than reachability: a bug in
/// the store's SQL or a broken constraint, reported with its SQLSTATE.
struct PostgresStatementError: Error, CustomStringConvertible {
    var sqlState: String
    var message: String
    var sql: String
    var description: String { "PostgreSQL \(sqlState): \(message) in: \(sql.prefix(200))" }
}

/// Two masters' transactions collided (serialization failure, deadlock, or two inserts of one
/// key, as two masters enrolling one agent): the whole transaction is run again. A duplicate
/// key that persists is no race but a real refusal: after a few runs it is reported as such.
struct TransactionConflict: Error {
    var duplicate: PostgresStatementError?

    /// After a transaction's `count`th collision: the error to give up with, or nil to run it again
    /// after `pause(after:)` (a duplicate that persists is a real refusal, not a race).
    func giveUp(after count: Int) -> (any Error)? {
        if let duplicate, count >= 3 { return duplicate }
        return count < 20 ? nil : DatabaseUnreachable(description: "transaction kept colliding with other masters'")
    }

    static func pause(after count: Int) -> Duration { .milliseconds(Int.random(in: 1...(5 * count))) }
}

/// PostgreSQL, for several masters sharing one database (docs/ARCHITECTURE.md §7).
/// The store's logic is synchronous SQL over one transaction; here each
/// transaction runs on a thread of a small pool, holding one connection, its
/// statements waited for one by one (as a JDBC driver would); writes that arrive
/// together share a transaction (`PostgresGroupCommit`). READ COMMITTED
/// with explicit row locks (`FOR UPDATE`, `SKIP LOCKED`) where the logic reads
/// a row it then changes; collisions PostgreSQL detects are retried whole.
public final class PostgresEngine: SQLEngine {
    public let dialect = SQLDialect(engine: .postgres)
    let location: PostgresLocation
    let connections: PostgresConnections
    let threads: NIOThreadPool
    let logger: Logger
    let wakeRelay: PostgresWakeRelay
    let group: PostgresGroupCommit
    public var relay: (any WakeRelay)? { wakeRelay }

    /// Connects, and brings the schema up to date (one master at a time, under an advisory lock).
    public init(_ location: PostgresLocation, logger: Logger) async throws {
        self.location = location
        self.logger = logger
        connections = PostgresConnections(location: location, logger: logger)
        threads = NIOThreadPool(numberOfThreads: location.poolSize)
        threads.start()
        group = PostgresGroupCommit(connections: connections, threads: threads, lanes: location.poolSize, logger: logger)
        wakeRelay = PostgresWakeRelay(location: location, connections: connections, logger: logger)
        try await PostgresSchema.migrate(location: location, logger: logger)
    }

    /// `clock_timestamp()`: the server's time when the statement runs (`now()` is the transaction's start).
    public func databaseTime() async throws -> Date {
        try await read { db in
            Date(timeIntervalSince1970: try Double.fetchOne(db, sql: "SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8") ?? 0)
        }
    }

    /// One read-only transaction, run again when it collides (writes go through `group`).
    public func read<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) throws -> T) async throws -> T {
        var conflicts = 0
        while true {
            let connection = try await connections.acquire()
            let logger = self.logger
            do {
                let result = try await threads.runIfActive { try Self.run(on: connection, logger: logger, body) }
                await connections.release(connection)
                return result
            } catch let conflict as TransactionConflict {
                await connections.release(connection)
                conflicts += 1
                if let error = conflict.giveUp(after: conflicts) { throw error }
                try await Task.sleep(for: TransactionConflict.pause(after: conflicts))
            } catch {
                await connections.release(connection, broken: error is DatabaseUnreachable || connection.isClosed)
                throw error
            }
        }
    }

    /// Concurrent writes share transactions and commits (`PostgresGroupCommit`).
    public func write<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) throws -> T) async throws -> T {
        try await group.write(body)
    }

    public func write<T: Sendable>(lockingAgent agent: Int64, _ body: @escaping @Sendable (any SQLDatabase) throws -> T)
        async throws -> T {
        try await group.write(lockingAgent: agent, body)
    }

    /// Tasks inserted since the planner's statistics were last refreshed, and when that was.
    private let statistics = Mutex<(inserted: Int, refreshing: Bool, last: ContinuousClock.Instant?)>((0, false, nil))
    /// Tasks added before the statistics are refreshed, and the least time between two refreshes.
    static let refreshAfter = (tasks: 500, every: Duration.seconds(10))

    /// The claim's plan follows the planner's statistics: with `tasks` analysed while a job's
    /// 3 000 tasks were not there yet, it read every queued task of the job, probed the blocklist for
    /// each and sorted them (4–11 ms a claim), where the queue's index gives the first 16 at once
    /// (0.14 ms). Autovacuum analyses only after its nap (a minute): a master that added many tasks
    /// analyses the tables claims read itself, after the submission committed, at most once in
    /// `refreshAfter.every`. ANALYZE samples a bounded number of rows: its cost does not grow with
    /// the queue.
    public func inserted(tasks: Int) {
        let now = ContinuousClock.now
        let refresh = statistics.withLock { state -> Bool in
            state.inserted += tasks
            guard state.inserted >= Self.refreshAfter.tasks, !state.refreshing,
                  state.last.map({ now - $0 >= Self.refreshAfter.every }) ?? true else { return false }
            state.inserted = 0
            state.refreshing = true
            return true
        }
        guard refresh else { return }
        Task {
            do {
                let connection = try await connections.acquire()
                do {
                    _ = try await connection.query(PostgresQuery(unsafeSQL: "ANALYZE tasks, jobs, job_blocklist"),
                                                   logger: logger).get()
                    await connections.release(connection)
                } catch {
                    await connections.release(connection, broken: connection.isClosed)
                    throw error
                }
            } catch {
                logger.warning("could not refresh PostgreSQL's statistics: \(PGTransaction.describe(error))")
            }
            statistics.withLock { $0.refreshing = false; $0.last = ContinuousClock.now }
        }
    }

    public func ping() async throws {
        _ = try await read { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }

    public func close() async {
        await connections.closeAll()
        try? await threads.shutdownGracefully()
    }

    /// One read-only transaction on the calling (pool) thread.
    static func run<T>(on connection: PostgresConnection, logger: Logger, _ body: (any SQLDatabase) throws -> T) throws -> T {
        let db = PGTransaction(connection: connection, writable: false, logger: logger)
        _ = try db.execute("BEGIN READ ONLY", [])
        do {
            let result = try body(db)
            _ = try db.execute("COMMIT", [])
            return result
        } catch {
            if !(error is DatabaseUnreachable) { _ = try? db.execute("ROLLBACK", []) }
            throw error
        }
    }
}

/// A connection inside one transaction; statements are waited for on the calling thread
/// (a pool thread, never an event loop).
final class PGTransaction: SQLDatabase {
    let connection: PostgresConnection
    let writable: Bool
    let logger: Logger
    var dialect: SQLDialect { SQLDialect(engine: .postgres) }

    init(connection: PostgresConnection, writable: Bool, logger: Logger) {
        self.connection = connection
        self.writable = writable
        self.logger = logger
    }

    func fetchAll(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
        let result = try query(sql, arguments)
        guard let first = result.rows.first else { return [] }
        var columns: [String: Int] = [:]
        for (index, cell) in first.enumerated() where columns[cell.columnName] == nil { columns[cell.columnName] = index }
        return try result.rows.map { row in SQLRow(columns: columns, values: try row.map(Self.value)) }
    }

    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int {
        try query(sql, arguments).metadata.rows ?? 0
    }

    /// Statements sent and not waited for yet, oldest first.
    private var unanswered: [(sql: String, answer: EventLoopFuture<PostgresQueryResult>)] = []
    /// Savepoints named so far in this transaction.
    private var savepoints = 0

    func savepointName() -> String {
        savepoints += 1
        return "part_\(savepoints)"
    }

    /// Sends the statement and returns, for each savepoint and its release (two a report in an
    /// exchange) and each UPDATE whose row count nobody reads (a run's start, progress and finish).
    /// postgres-nio still runs one statement at a time (it sends the next when the server is ready
    /// for it): what this spares is this thread's blocking and waking for each answer, not the
    /// network round trip. The connection runs statements in order, so the next one waited for is
    /// answered after this one; see `query`.
    func send(_ sql: String, _ arguments: [SQLValue]) throws {
        let text = arguments.isEmpty ? sql : Self.numberedPlaceholders(sql)
        unanswered.append((text, connection.query(PostgresQuery(unsafeSQL: text, binds: Self.bindings(arguments)),
                                                  logger: logger)))
    }

    func settle() throws {
        let sent = unanswered
        unanswered = []
        for (earlier, answer) in sent {
            do { _ = try answer.wait() } catch { throw Self.classify(error, sql: earlier) }
        }
    }

    static func bindings(_ arguments: [SQLValue]) -> PostgresBindings {
        var binds = PostgresBindings(capacity: arguments.count)
        for argument in arguments {
            switch argument {
            case .null: binds.appendNull()
            case .integer(let v): binds.append(v)
            case .real(let v): binds.append(v)
            case .text(let v): binds.append(v)
            case .blob(let v): binds.append(ByteBuffer(bytes: v))
            }
        }
        return binds
    }

    func query(_ sql: String, _ arguments: [SQLValue]) throws -> PostgresQueryResult {
        let text = Self.numberedPlaceholders(sql)
        let answer = connection.query(PostgresQuery(unsafeSQL: text, binds: Self.bindings(arguments)), logger: logger)
        let result: Result<PostgresQueryResult, any Error>
        do {
            result = .success(try answer.wait())
        } catch {
            result = .failure(error)
        }
        // The statements sent before this one were answered before it. The first that failed is the
        // cause (PostgreSQL refuses what follows a failure in a transaction). A whole rollback succeeds
        // whatever came before it; a rollback to a savepoint does not hide an earlier failure: the
        // savepoint it would go back to may be an earlier report's whose release failed with it, and
        // that report's changes would go unnoticed.
        if !unanswered.isEmpty {
            if sql == "ROLLBACK" {
                unanswered = []
            } else {
                try settle()
            }
        }
        do {
            return try result.get()
        } catch {
            throw Self.classify(error, sql: text)
        }
    }

    /// `?` → `$1, $2, …`, outside quoted literals and identifiers. Byte by byte: the characters that
    /// matter are ASCII, and no byte of a multi-byte UTF-8 character is (walking `Character`s, the
    /// grapheme breaking cost tens of microseconds a statement, every statement).
    static func numberedPlaceholders(_ sql: String) -> String {
        let questionMark = UInt8(ascii: "?"), single = UInt8(ascii: "'"), double = UInt8(ascii: "\"")
        var out: [UInt8] = []
        out.reserveCapacity(sql.utf8.count + 16)
        var number = 0
        var quote: UInt8?
        for byte in sql.utf8 {
            if let open = quote {
                if byte == open { quote = nil }
                out.append(byte)
            } else if byte == single || byte == double {
                quote = byte
                out.append(byte)
            } else if byte == questionMark {
                number += 1
                out.append(UInt8(ascii: "$"))
                out += String(number).utf8
            } else {
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Reachability problems become `DatabaseUnreachable` (503), collisions `TransactionConflict`
    /// (retried), the rest a `PostgresStatementError` that says what PostgreSQL said.
    static func classify(_ error: any Error, sql: String) -> any Error {
        guard let psql = error as? PSQLError else {
            return DatabaseUnreachable(description: "PostgreSQL connection: \(error)")
        }
        guard psql.code == .server, let state = psql.serverInfo?[.sqlState] else {
            return DatabaseUnreachable(description: "PostgreSQL connection: \(describe(psql))")
        }
        switch state {
        case "40001", "40P01": return TransactionConflict()
        case "23505":
            return TransactionConflict(duplicate: PostgresStatementError(
                sqlState: state, message: psql.serverInfo?[.message] ?? "", sql: sql))
        case _ where state.hasPrefix("08") || state.hasPrefix("57P") || state == "53300" || state == "25006"
            // lock_timeout, statement_timeout: the database is too busy or stuck right now; try again.
            || state == "55P03" || state == "57014":
            return DatabaseUnreachable(description: "PostgreSQL \(state): \(psql.serverInfo?[.message] ?? "")")
        default:
            return PostgresStatementError(sqlState: state, message: psql.serverInfo?[.message] ?? "", sql: sql)
        }
    }

    /// What went wrong, without the query's bound values (PSQLError's own description says nothing).
    static func describe(_ error: any Error) -> String {
        guard let psql = error as? PSQLError else { return "\(error)" }
        if let message = psql.serverInfo?[.message] {
            return "\(psql.serverInfo?[.sqlState] ?? "?"): \(message)"
        }
        return "\(psql.code)" + (psql.underlying.map { ": \($0)" } ?? "")
    }

    static func value(_ cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8: return .integer(try cell.decode(Int64.self))
        case .float4, .float8: return .real(try cell.decode(Double.self))
        case .bool: return .integer(try cell.decode(Bool.self) ? 1 : 0)
        case .bytea: return .blob(Data(try cell.decode(ByteBuffer.self).readableBytesView))
        case .void: return .null
        case .numeric:
            // SUM of a BIGINT column is NUMERIC: whole numbers come back as integers.
            let number = NSDecimalNumber(decimal: try cell.decode(Decimal.self)).doubleValue
            if number.rounded() == number, abs(number) < 9e15 { return .integer(Int64(number)) }
            return .real(number)
        default: return .text(try cell.decode(String.self))
        }
    }
}

/// The master's connections to PostgreSQL: opened on demand up to the pool size, reopened after
/// a failure with back-off (while backing off, callers get `DatabaseUnreachable` at once instead
/// of piling up on a dead server).
actor PostgresConnections {
    let location: PostgresLocation
    let logger: Logger
    private var idle: [PostgresConnection] = []
    private var open = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var retryAt: ContinuousClock.Instant?
    private var backoff: Duration = .milliseconds(100)
    private var nextID = 0
    private var closed = false

    init(location: PostgresLocation, logger: Logger) {
        self.location = location
        self.logger = logger
    }

    deinit {
        for connection in idle { connection.close().whenComplete { _ in withExtendedLifetime(connection) {} } }
    }

    func acquire() async throws -> PostgresConnection {
        while true {
            guard !closed else { throw DatabaseUnreachable(description: "the master is shutting down") }
            if let connection = idle.popLast() {
                if connection.isClosed { open -= 1; continue }
                return connection
            }
            if open < location.poolSize {
                open += 1
                do {
                    return try await connect()
                } catch {
                    open -= 1
                    wakeOne()
                    throw error
                }
            }
            await withCheckedContinuation { waiters.append($0) }
        }
    }

    func release(_ connection: PostgresConnection, broken: Bool = false) {
        if broken || closed {
            open -= 1
            connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
        } else {
            idle.append(connection)
        }
        wakeOne()
    }

    func closeAll() {
        closed = true
        for connection in idle { connection.close().whenComplete { _ in withExtendedLifetime(connection) {} } }
        idle.removeAll()
        for waiter in waiters { waiter.resume() }
        waiters.removeAll()
    }

    private func wakeOne() {
        if !waiters.isEmpty { waiters.removeFirst().resume() }
    }

    /// A fresh connection, or `DatabaseUnreachable`; failures space the next attempts out.
    func connect() async throws -> PostgresConnection {
        if let retryAt, ContinuousClock.now < retryAt {
            throw DatabaseUnreachable(description: "PostgreSQL at \(location) is unreachable; reconnecting")
        }
        nextID += 1
        do {
            let connection = try await Self.connect(location, id: nextID, logger: logger)
            if self.retryAt != nil { logger.notice("reconnected to PostgreSQL at \(location)") }
            self.retryAt = nil
            backoff = .milliseconds(100)
            return connection
        } catch {
            let reason = PGTransaction.describe(error)
            if self.retryAt == nil { logger.error("cannot reach PostgreSQL at \(location): \(reason)") }
            self.retryAt = ContinuousClock.now + backoff
            backoff = min(backoff * 2, .seconds(2))
            throw DatabaseUnreachable(description: "PostgreSQL at \(location) is unreachable: \(reason)")
        }
    }

    /// The driver's TLS for the location's `sslmode`: `require` encrypts without checking who answers;
    /// `verify-full` checks the certificate (against `sslrootcert`, else the system's CAs) and the host name.
    static func tls(_ location: PostgresLocation) throws -> PostgresConnection.Configuration.TLS {
        switch location.tls {
        case .disable:
            return .disable
        case .require:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            return .require(try NIOSSLContext(configuration: configuration))
        case .verifyFull(let rootCertificate):
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .fullVerification
            if let rootCertificate {
                do {
                    configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(rootCertificate))
                } catch {
                    throw DatabaseUnreachable(description: "cannot read sslrootcert \(rootCertificate): \(error)")
                }
            }
            return .require(try NIOSSLContext(configuration: configuration))
        }
    }

    static func connect(_ location: PostgresLocation, id: Int, logger: Logger) async throws -> PostgresConnection {
        var configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: try tls(location))
        configuration.options.connectTimeout = .seconds(5)
        // Bounds on what one transaction may hold: a statement stuck behind a lock, a runaway query, or
        // a master that died mid-transaction (its locks go with its session) never stalls the others
        // for longer than this. Each ends the transaction with an error the caller gets as a 503.
        configuration.options.additionalStartupParameters = [
            ("statement_timeout", "\(PostgresLocation.statementTimeout)s"),
            ("lock_timeout", "\(PostgresLocation.lockTimeout)s"),
            ("idle_in_transaction_session_timeout", "\(PostgresLocation.idleInTransactionTimeout)s"),
        ]
        return try await PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.any(), configuration: configuration, id: id, logger: logger).get()
    }
}
