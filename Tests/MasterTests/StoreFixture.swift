import Foundation
import Logging
import PaddockMaster
import PaddockTestSupport
import Synchronization
import Testing

/// The two engines the store runs on; the store contract suite runs every behaviour on each.
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres
    var testDescription: String { rawValue }
}

/// A fresh, empty store on `backend`: a new SQLite file, or a new database on the test
/// run's PostgreSQL server (one real server per test process, started on first use).
/// `second()` opens another store on the same database: a second master.
final class StoreFixture: Sendable {
    let backend: Backend
    let store: SQLStore
    /// The SQLite file, or the PostgreSQL URL.
    let location: String

    private init(backend: Backend, store: SQLStore, location: String) {
        self.backend = backend
        self.store = store
        self.location = location
    }

    static func make(_ backend: Backend) async throws -> StoreFixture {
        switch backend {
        case .sqlite:
            let path = try TestDirectory.makeUntilExit("paddock-store") + "/p.sqlite"
            return StoreFixture(backend: backend, store: try SQLStore.sqlite(path: path), location: path)
        case .postgres:
            let server = try await SharedPostgres.shared.server()
            let name = "t_" + UUID().uuidString.prefix(12).lowercased().filter { $0 != "-" }
            let url = try await offThePool { try server.createDatabase(name) }
            return StoreFixture(backend: backend, store: try await open(url), location: url)
        }
    }

    /// Another store on the same database, as a second master has.
    func second() async throws -> SQLStore {
        switch backend {
        case .sqlite: try SQLStore.sqlite(path: location)
        case .postgres: try await Self.open(location)
        }
    }

    static func open(_ url: String) async throws -> SQLStore {
        var logger = Logger(label: "test.store")
        logger.logLevel = .warning
        return try await SQLStore.postgres(try PostgresLocation(url: url + "?pool=4"), logger: logger)
    }
}

/// The test process's PostgreSQL server, started once and killed when the process exits.
actor SharedPostgres {
    static let shared = SharedPostgres()
    /// One start, however many tests ask at once (the actor is reentrant across the await).
    private var starting: Task<PostgresServer, any Error>?

    func server() async throws -> PostgresServer {
        if let starting { return try await starting.value }
        let task = Task { () throws -> PostgresServer in
            guard PostgresServer.isAvailable else { throw FixtureError(PostgresServer.unavailableReason) }
            let server = try await PostgresServer.start()
            exitingServer.withLock { $0 = server }
            atexit { exitingServer.withLock { $0?.terminateAndRemove() } }
            return server
        }
        starting = task
        return try await task.value
    }
}

/// What the atexit hook stops (a C hook captures nothing: it reads this).
private let exitingServer = Mutex<PostgresServer?>(nil)

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
