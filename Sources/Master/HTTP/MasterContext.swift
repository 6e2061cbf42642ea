import Foundation
import Hummingbird
import NIOCore
import PaddockProtocol

/// Who is calling, as established by `AuthMiddleware`.
public enum Caller: Sendable, Equatable {
    case anonymous
    /// Holds a join token (nil: the bootstrap `--join-token`): may only enroll.
    case joiner(TokenID?)
    /// A user: the bootstrap admin token or a named token of role admin, submit or read.
    case user(User)
    case agent(AgentIdentity)

    /// The bootstrap `--admin-token`.
    public static let bootstrapAdmin = Caller.user(User(name: "admin", role: .admin, token: nil))
}

/// A user's token as the routes need it: its name (the owner of the jobs it submits), role and id.
public struct User: Sendable, Equatable {
    public var name: String
    public var role: TokenRole
    /// The named token (nil: the bootstrap admin token).
    public var token: TokenID?
    public var expiresAt: Date?
    public init(name: String, role: TokenRole, token: TokenID?, expiresAt: Date? = nil) {
        self.name = name
        self.role = role
        self.token = token
        self.expiresAt = expiresAt
    }
}

/// The request context of every master route: the TCP peer, the client address (set by
/// `ClientAddressMiddleware`) and the caller (set by the auth middleware).
public struct MasterContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public var caller: Caller = .anonymous
    /// The hash of the agent credential the caller presented, when the auth middleware took it from
    /// its `CredentialCache`: the route must check it in its own transaction.
    var uncheckedCredential: String?
    /// The TCP peer: the client itself, or the frontend that relayed the request.
    public let remoteAddress: SocketAddress?
    /// Who made the request, per `TrustedProxies.client`; nil without a network peer (in-process tests).
    public var client: IPAddress?
    /// The request's connection: a long-poll held on it keeps its agent alive while it is open (`HeldPolls`).
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        channel = source.channel
    }

    /// The peer as an IP address (nil for unix sockets and in-process channels).
    var peerAddress: IPAddress? { remoteAddress.flatMap(IPAddress.init(socketAddress:)) }

    /// The client as log lines name it.
    var clientName: String { client?.description ?? "local" }

    /// Bodies are collected by the routes themselves with per-route bounds (`BodyLimit`).
    public var maxUploadSize: Int { Limits.jobSpecBytes }
}

/// Per-route bounds on request bodies (docs/ARCHITECTURE.md §10).
enum BodyLimit {
    static let jobSpec = Limits.jobSpecBytes
    static let logChunk = Limits.logChunkBytes
    /// An exchange: up to `ExchangeRequest.logBytes` of log (base64 in JSON: 4/3 of it) and its reports.
    static let exchange = ExchangeRequest.logBytes * 4 / 3 + (1 << 20)
    static let small = 256 * 1024
}

extension IPAddress {
    /// A socket's address from its bytes: every request has one, and writing it out to parse it back
    /// cost more than the rest of deciding who made the request.
    init?(socketAddress: SocketAddress) {
        switch socketAddress {
        case .v4(let address): self.init(bytes: withUnsafeBytes(of: address.address.sin_addr) { Array($0) })
        case .v6(let address): self.init(bytes: withUnsafeBytes(of: address.address.sin6_addr) { Array($0) })
        case .unixDomainSocket: return nil
        }
    }
}
