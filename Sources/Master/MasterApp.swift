import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle

/// The master: the HTTP application and the lease sweeper, built from a config and a store.
public struct Master: Sendable {
    public let config: MasterConfig
    public let store: any Store
    public let wake: WakeSignal
    public let commandWake: WakeSignal
    public let logWake: WakeSignal
    /// Dashboards' change feed (`GET /v1/changes`).
    public let changeWake: WakeSignal
    public let stats = MasterStats()
    public let agentAddresses = AgentAddresses()
    /// Agents' credentials the exchange route checked once (`CredentialCache`).
    let credentials = CredentialCache()
    /// Agents' long-polls held now (`LivenessKeeper` keeps their agents online).
    let heldPolls = HeldPolls()

    public init(config: MasterConfig, store: any Store) {
        self.config = config
        self.store = store
        wake = WakeSignal(.claims, relay: store.relay)
        commandWake = WakeSignal(.commands, relay: store.relay)
        logWake = WakeSignal(.logs, relay: store.relay)
        changeWake = WakeSignal(.changes, relay: store.relay)
    }

    /// The router alone: what the in-process tests drive.
    public func router() -> Router<MasterContext> {
        let router = Router(context: MasterContext.self)
        router.add(middleware: StatsMiddleware(stats: stats))
        router.add(middleware: ClientAddressMiddleware(trusted: config.trustedProxies))
        router.add(middleware: ErrorMiddleware(stats: stats))
        router.add(middleware: NULQueryMiddleware())
        // The dashboard's files need no token (they hold no secret): served before authentication.
        router.add(middleware: DashboardMiddleware())
        router.add(middleware: AuthMiddleware(config: config, store: store, credentials: credentials))
        router.add(middleware: RateLimitMiddleware(clients: config.rateLimit, agents: config.agentRateLimit, stats: stats))
        router.add(middleware: ChangeNoticeMiddleware(changes: changeWake))
        MasterAPI(store: store, config: config, wake: wake, commandWake: commandWake, logWake: logWake, stats: stats,
                  addresses: agentAddresses, changes: changeWake, credentials: credentials, heldPolls: heldPolls)
            .register(on: router)
        return router
    }

    /// Everything the master runs: the HTTP server (as the group's first service) and the lease sweeper.
    /// `onListening` receives the bound URL (useful with port 0).
    public func services(logger: Logger, onListening: @escaping @Sendable (String) async -> Void = { _ in }) async throws
        -> [any Service] {
        // Leases are measured on the database's clock: read it before anything is granted.
        _ = try await store.syncClock()
        // Nothing is rerun because the farm's masters were all away: after an outage every live lease
        // gets a fresh timeout, once (a master restarting while another one sweeps gives none).
        if let given = try await store.grantGrace(leaseTimeout: config.leaseTimeout, now: store.clock.now()) {
            logger.notice("no master swept leases for \(Int(given.rounded(.up))) s: live leases are given that time back")
        }
        // `/metrics` reads task counts kept as rows change: counted once here, before any request.
        try await (store as? SQLStore)?.countTasks()
        let scheme = config.tls == nil ? "http" : "https"
        let certificate = try config.tls.map { files throws(MasterStartError) in try ServerCertificate(files: files) }
        let app = Application(
            router: router(),
            server: try Self.server(tls: certificate, idleTimeout: config.idleTimeout),
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: "paddock"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                await onListening("\(scheme)://\(config.host):\(port)")
            },
            logger: logger)
        // The group stops services in reverse order: the sweeper (which then ends the long-polls) before the server.
        var services: [any Service] = [app]
        if let certificate { services.append(CertificateReloader(certificate: certificate, logger: logger)) }
        if let relay = store.relay {
            services.append(WakeListener(relay: relay, wakes: [wake, commandWake, logWake, changeWake], logger: logger))
        }
        services.append(LeaseSweeper(store: store, config: config, claims: wake, changes: changeWake,
                                     closing: [wake, commandWake, logWake, changeWake], logger: logger))
        services.append(LivenessKeeper(store: store, polls: heldPolls, config: config, logger: logger))
        if config.logRetention != nil || config.logRetentionBytes != nil, let store = store as? SQLStore {
            services.append(LogPruner(store: store, retention: config.logRetention, bytesPerJob: config.logRetentionBytes,
                                      logger: logger))
        }
        return services
    }

    /// HTTP/1.1, in TLS when the config names a certificate and key. Hummingbird closes a connection
    /// idle past `idleTimeout` unless a request read whole is being answered (a long-poll).
    static func server(tls: ServerCertificate?, idleTimeout: Double?) throws -> HTTPServerBuilder {
        let http1 = HTTPServerBuilder.http1(configuration: .init(additionalChannelHandlers: [ConnectionWatch()],
                                                                 idleTimeout: idleTimeout.map { .milliseconds(Int64($0 * 1000)) }))
        guard let tls else { return http1 }
        return try .tls(http1, tlsConfiguration: tls.configuration())
    }
}

/// The master cannot start as configured (a file it needs is missing or unreadable).
public struct MasterStartError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
