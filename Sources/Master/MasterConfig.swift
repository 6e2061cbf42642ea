import Foundation

/// The PEM files of an HTTPS master: its certificate chain (its own first) and private key.
public struct TLSFiles: Sendable, Equatable {
    public var certificateChain: String
    public var privateKey: String
    public init(certificateChain: String, privateKey: String) {
        self.certificateChain = certificateChain
        self.privateKey = privateKey
    }
}

/// Everything `paddock master` is told on its command line.
public struct MasterConfig: Sendable {
    public var host: String
    public var port: Int
    public var joinToken: String
    public var adminToken: String
    /// An agent silent this long is offline and its leases expire.
    public var leaseTimeout: Double
    /// After this many failed runs of one job on one agent, that agent gets no more of its tasks.
    public var blocklistAfter: Int
    /// The URL agents and users reach this master by (its frontend's), for the agent install script.
    public var publicURL: String?
    /// The package `/install-agent.sh` installs, served at `/packages/NAME`.
    public var agentPackage: AgentPackage?
    /// Frontends whose `X-Forwarded-For` names the client (see `TrustedProxies.client`); none by default.
    public var trustedProxies: TrustedProxies = .none
    /// Serve HTTPS with this certificate chain and key (PEM files); plain HTTP when nil.
    public var tls: TLSFiles?
    /// Each token's and each tokenless address's request rate (`RateLimitMiddleware`); nil: none.
    public var rateLimit: RateLimit? = .clientDefault
    /// Each agent's request rate; nil (the default): agents are not limited.
    public var agentRateLimit: RateLimit?
    /// A connection that has not sent a whole request for this long is closed (a request half
    /// read, or a connection left open between requests); a long-poll, read whole, is no such thing.
    public var idleTimeout: Double? = 75
    /// The logs of tasks that ended this many seconds ago are deleted; nil (the default): kept.
    public var logRetention: Double?
    /// Each job's stored logs are kept within this many bytes (the logs of its tasks that ended
    /// longest ago go first); nil (the default): no bound but each run's cap.
    public var logRetentionBytes: Int64?

    public init(host: String = "127.0.0.1", port: Int = 8420, joinToken: String, adminToken: String,
                leaseTimeout: Double = 30, blocklistAfter: Int = 3) {
        self.blocklistAfter = blocklistAfter
        self.host = host
        self.port = port
        self.joinToken = joinToken
        self.adminToken = adminToken
        self.leaseTimeout = leaseTimeout
    }

    /// Agents heartbeat three times per lease: one lost heartbeat costs nothing.
    public var heartbeatInterval: Double { max(0.2, leaseTimeout / 3) }
}
