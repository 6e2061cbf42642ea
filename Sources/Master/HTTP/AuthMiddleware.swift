import Foundation
import Hummingbird
import PaddockProtocol

/// Establishes the caller from `Authorization: Bearer T`: the bootstrap admin token, the
/// bootstrap join token, a named token (its role), or an agent's own credential. Everything but
/// the open paths needs one. A named token that expired, was revoked or is used up is 401.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = MasterContext
    let config: MasterConfig
    let store: any Store
    /// Credentials of exchanges already checked once (the exchange checks them again itself).
    let credentials: CredentialCache
    /// The bootstrap tokens' hashes, made once: a request's token is hashed once and compared with
    /// both (hashing all three per request was a percent of the master's CPU).
    private let adminTokenHash: String
    private let joinTokenHash: String

    init(config: MasterConfig, store: any Store, credentials: CredentialCache) {
        self.config = config
        self.store = store
        self.credentials = credentials
        adminTokenHash = SecretHash.hex(config.adminToken)
        joinTokenHash = SecretHash.hex(config.joinToken)
    }

    /// Health, the API document and Prometheus scrapes need no token (they reveal counts, no data).
    /// The agent install script and its package are open too: a new host has no token yet, and the
    /// script checks the package against the checksum it carries.
    static let open: Set<String> = [APIRoute.healthz.path, APIRoute.openapi.path, APIRoute.prometheus.path,
                                    APIRoute.installAgentScript.path]

    /// Agents' credentials start so (`MasterAPI.newCredential`); named tokens' secrets with `pt_`.
    static let credentialPrefix = "pa_"

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if Self.open.contains(request.uri.path) || request.uri.path.hasPrefix("/packages/") {
            return try await next(request, context)
        }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw PaddockError.unauthorized
        }
        // Spaces and tabs around the token trimmed by hand: Foundation's `trimmingCharacters` goes
        // through NSString, on every request.
        var given = header.dropFirst("Bearer ".count)
        while let first = given.first, first == " " || first == "\t" { given = given.dropFirst() }
        while let last = given.last, last == " " || last == "\t" { given = given.dropLast() }
        let token = String(given)
        guard !token.isEmpty, token.utf8.count <= 512 else { throw PaddockError.unauthorized }
        var context = context
        let hash = SecretHash.hex(token)
        if token.hasPrefix(Self.credentialPrefix), MasterAPI.isExchange(request.method, request.uri.path) {
            if let known = credentials.identity(hash: hash) {
                context.caller = .agent(known)
                context.uncheckedCredential = hash
                return try await next(request, context)
            }
            context.caller = try await caller(token, hash: hash)
            if case .agent(let identity) = context.caller { credentials.remember(identity, hash: hash) }
        } else {
            context.caller = try await caller(token, hash: hash)
        }
        return try await next(request, context)
    }

    /// `hash`: the token's (`SecretHash.hex`), made once per request.
    func caller(_ token: String, hash: String) async throws -> Caller {
        // Both bootstrap tokens are always compared, whatever the first answer, in constant time
        // (through the hashes compared, whatever the lengths).
        let isAdmin = SecretHash.equal(hash, adminTokenHash)
        let isJoin = SecretHash.equal(hash, joinTokenHash)
        if isAdmin { return .bootstrapAdmin }
        if isJoin { return .joiner(nil) }
        if token.hasPrefix(Self.credentialPrefix) {
            guard let agent = try await store.authenticate(credential: token) else { throw PaddockError.unauthorized }
            return .agent(agent)
        }
        guard let named = try await store.token(secret: token, now: store.clock.now()) else { throw PaddockError.unauthorized }
        switch named.state {
        case .active: break
        case .expired:
            throw PaddockError.tokenNotValid("token \(named.id) (\(named.name)) expired at \(Self.time(named.expiresAt))")
        case .revoked:
            throw PaddockError.tokenNotValid("token \(named.id) (\(named.name)) was revoked at \(Self.time(named.revokedAt))")
        case .usedUp:
            throw PaddockError.tokenNotValid("join token \(named.id) (\(named.name)) has been used \(named.uses) times, its limit: "
                                             + "an admin makes a new one (paddock token create --role join)")
        }
        if named.role == .join { return .joiner(named.id) }
        return .user(User(name: named.name, role: named.role, token: named.id, expiresAt: named.expiresAt))
    }

    static func time(_ date: Date?) -> String {
        date.map { ISO8601DateFormatter().string(from: $0) } ?? "?"
    }
}

extension MasterContext {
    /// The caller's role, as 403 messages name it.
    var roleName: String {
        switch caller {
        case .anonymous: "none"
        case .joiner: "join"
        case .user(let user): user.role.rawValue
        case .agent: "agent"
        }
    }

    /// The calling user, whose role must allow `role` (admin allows everything, submit allows read).
    @discardableResult
    func require(_ role: TokenRole) throws -> User {
        guard case .user(let user) = caller, user.role.allows(role) else { throw PaddockError.needsRole(role, has: roleName) }
        return user
    }

    func requireAdmin() throws { try require(.admin) }

    /// A user who may control a job of `owner`: an admin, or a submit token of that name.
    func requireControl(of what: String, ownedBy owner: String) throws {
        let user = try require(.submit)
        guard user.role == .admin || user.name == owner else {
            throw PaddockError.forbidden("this call needs the admin role, or the submit role as the owner of \(what) "
                                         + "(owned by \(owner.prefix(80))); this token has role submit as \(user.name)")
        }
    }

    /// The calling agent, which must be `id` when one is named in the path.
    func requireAgent(_ id: AgentID? = nil) throws -> AgentIdentity {
        guard case .agent(let agent) = caller else {
            throw PaddockError.forbidden("this call needs an agent's credential; this token has role \(roleName)")
        }
        if let id, id != agent.id {
            throw PaddockError.forbidden("this call needs the credential of agent \(id) (an agent may act only on itself); "
                                         + "this is agent \(agent.id)'s")
        }
        return agent
    }
}
