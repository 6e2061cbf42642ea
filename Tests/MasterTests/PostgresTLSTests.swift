import Foundation
import Logging
import PaddockMaster
import PaddockProtocol
import PaddockTestSupport
import Testing

/// A master's connections to PostgreSQL in TLS (issue: security): `sslmode=verify-full` with the
/// server's CA works and is encrypted, without it the certificate is refused, `require` encrypts.
@Suite(.serialized) struct PostgresTLSTests {
    /// The test CA and its 127.0.0.1 certificate (valid until 2126), shared with the client's tests.
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("ClientTests/Fixtures")
    static var ca: String { fixtures.appendingPathComponent("ca.pem").path }

    static func open(_ url: String) async throws -> SQLStore {
        var logger = Logger(label: "test.store.tls")
        logger.logLevel = .critical
        return try await SQLStore.postgres(try PostgresLocation(url: url), logger: logger)
    }

    /// Whether the store's own connection is in TLS, as the server sees it.
    static func encrypted(_ store: SQLStore) async throws -> Bool {
        try await store.engine.read { db in
            try Bool.fetchOne(db, sql: "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") ?? false
        }
    }

    @Test func verifyFullWithTheCAEncryptsAndWithoutItRefuses() async throws {
        let server = try await PostgresServer.start(tls: (Self.fixtures.appendingPathComponent("server.pem").path,
                                                          Self.fixtures.appendingPathComponent("server-key.pem").path))
        defer { server.terminate() }
        let url = try await offThePool { try server.createDatabase("tls_store") }

        let verified = try await Self.open(url + "?sslmode=verify-full&sslrootcert=\(Self.ca)")
        #expect(try await Self.encrypted(verified))
        let job = try await verified.submit(JobSubmission(name: "over-tls", tasks: [TaskSpec(name: "t", command: ["true"])]),
                                            owner: "alice", now: Date())
        #expect(try await verified.job(job.id).name == "over-tls")
        await verified.close()

        let required = try await Self.open(url + "?sslmode=require")
        #expect(try await Self.encrypted(required))
        await required.close()

        let plain = try await Self.open(url)
        #expect(try await !Self.encrypted(plain))
        await plain.close()

        // The system's CAs do not know the test CA: the server is not who it must be.
        var refused = false
        do {
            let untrusted = try await Self.open(url + "?sslmode=verify-full")
            do { try await untrusted.ping() } catch { refused = true }
            await untrusted.close()
        } catch {
            refused = true  // opening runs the migrations: its first connection already fails
        }
        #expect(refused, "a server whose certificate no trusted CA signed was accepted")
    }

    @Test func sslOptionsAreChecked() throws {
        #expect(try PostgresLocation(url: "postgres://u@h/db?sslmode=require").tls == .require)
        #expect(try PostgresLocation(url: "postgres://u@h/db?sslmode=verify-full&sslrootcert=/ca.pem").tls
                == .verifyFull(rootCertificate: "/ca.pem"))
        #expect(throws: PaddockError.self) { try PostgresLocation(url: "postgres://u@h/db?sslmode=prefer") }
        #expect(throws: PaddockError.self) { try PostgresLocation(url: "postgres://u@h/db?sslrootcert=/ca.pem") }
        #expect(try PostgresLocation(url: "postgres://u:secret@h/db?sslmode=require").description
                == "postgres://u@h:5432/db?sslmode=require")
    }
}
