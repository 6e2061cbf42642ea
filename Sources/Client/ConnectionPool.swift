import AsyncHTTPClient
import NIOCore
import NIOSSL
import Synchronization

/// Connections to masters: one AsyncHTTPClient `HTTPClient` on the process's shared event loops
/// (`MultiThreadedEventLoopGroup.singleton`, one thread per core). Connections are HTTP/1.1,
/// kept alive and reused (closed after 20 s idle: well before the master's own idle timeout, 75 s by
/// default, closes them, so that a request is never sent on a connection the master is closing); a request in flight has a connection to
/// itself, so each long-poll holds one while it waits and gives it back when it ends. NIO sets
/// TCP_NODELAY on every client socket (ClientBootstrap's default), so small requests go out at once.
///
/// `MasterClient(baseURL:token:)` uses a pool shared by the whole process; a client trusting a
/// custom CA gets one pool per CA file. Whoever needs many connections to one master (the bench's
/// crowd of simulated agents) makes its own. A pool is shut down when the last client using it goes.
public final class ConnectionPool: Sendable {
    let http: HTTPClient

    /// A pool of its own, allowing `connectionsPerHost` connections to one master at once
    /// (requests beyond that wait for a connection).
    public convenience init(connectionsPerHost: Int) {
        self.init(configuration: Self.configuration(connectionsPerHost: connectionsPerHost, tls: nil))
    }

    /// A pool of its own whose `https://` connections trust only the certificates in `caFile` (PEM).
    public convenience init(connectionsPerHost: Int, caFile: String) throws(ClientTLSError) {
        self.init(configuration: Self.configuration(connectionsPerHost: connectionsPerHost, tls: try Self.tls(caFile: caFile)))
    }

    init(configuration: HTTPClient.Configuration) {
        http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    deinit {
        // Non-blocking: the pool closes its connections on its event loops and calls back when done.
        http.shutdown { _ in }
    }

    /// Connections per master allowed in the shared pools: the agent's long-poll, its heartbeats
    /// and the exchanges that carry its reports; the CLI's few calls.
    static let defaultConnectionsPerHost = 16

    /// The pool of every `MasterClient(baseURL:token:)` in the process (lives as long as it).
    static let shared = ConnectionPool(connectionsPerHost: defaultConnectionsPerHost)

    /// One pool per custom CA file, made on first use.
    private static let byCAFile = Mutex<[String: ConnectionPool]>([:])

    static func trusting(caFile: String) throws(ClientTLSError) -> ConnectionPool {
        if let pool = byCAFile.withLock({ $0[caFile] }) { return pool }
        // Read the file outside the lock; if two threads race, the first stored pool wins.
        let made = try ConnectionPool(connectionsPerHost: defaultConnectionsPerHost, caFile: caFile)
        return byCAFile.withLock { pools in
            if let pool = pools[caFile] { return pool }
            pools[caFile] = made
            return made
        }
    }

    static func configuration(connectionsPerHost: Int, tls: TLSConfiguration?) -> HTTPClient.Configuration {
        // No read timeout: a long-poll is silent until it answers; each request has its own deadline.
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls,
                                                     timeout: .init(connect: .seconds(10), read: nil))
        configuration.httpVersion = .http1Only
        configuration.connectionPool = .init(idleTimeout: .seconds(20),
                                             concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, connectionsPerHost))
        // A refused connection fails the request at once: callers (the agent's `Backoff`, the CLI's
        // user) decide about retrying, not a hidden loop that would hold the call until its deadline.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.decompression = .disabled
        return configuration
    }

    /// Client TLS trusting only the PEM certificates in `caFile`.
    static func tls(caFile: String) throws(ClientTLSError) -> TLSConfiguration {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(caFile)
        } catch {
            throw ClientTLSError(description: "cannot read the CA file \(caFile): \(error)")
        }
        guard !certificates.isEmpty else { throw ClientTLSError(description: "no PEM certificate in the CA file \(caFile)") }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(certificates)
        return tls
    }
}

/// A custom CA file that cannot be used.
public struct ClientTLSError: Error, CustomStringConvertible, Sendable {
    public let description: String
}
