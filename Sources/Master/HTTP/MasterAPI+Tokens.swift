import Foundation
import Hummingbird
import PaddockProtocol

/// Named tokens (admin), who a token is, and an admin's reset of an agent's enrollment.
extension MasterAPI {
    /// `POST /v1/tokens`: the secret is in this answer and nowhere else (the store keeps its SHA-256).
    func createToken(_ request: Request, _ context: MasterContext) async throws -> Response {
        try context.requireAdmin()
        let body = try await Self.decode(TokenRequest.self, from: request, limit: BodyLimit.small)
        let secret = SecretHash.newSecret(prefix: "pt_")
        let token = try await store.createToken(body, secret: secret, now: store.clock.now())
        context.logger.notice("token \(token.id) (\(token.name), role \(token.role.rawValue)) created by \(context.callerName)")
        return try Self.json(CreatedToken(token: token, secret: secret), status: .created)
    }

    func listTokens(_ request: Request, _ context: MasterContext) async throws -> Response {
        try context.requireAdmin()
        return try Self.json(Page(items: try await store.tokens(now: store.clock.now()), next: nil))
    }

    /// `DELETE /v1/tokens/{id}`: the token stops working at once (401); it stays listed as revoked.
    func revokeToken(_ request: Request, _ context: MasterContext) async throws -> Response {
        try context.requireAdmin()
        let token = try await store.revokeToken(try Self.id(TokenID.self, context, what: "token"), now: store.clock.now())
        context.logger.notice("token \(token.id) (\(token.name)) revoked by \(context.callerName)")
        return try Self.json(token)
    }

    func whoami(_ request: Request, _ context: MasterContext) async throws -> Response {
        let who: WhoAmI = switch context.caller {
        case .anonymous: throw PaddockError.unauthorized
        case .joiner(let token): WhoAmI(name: "join", role: TokenRole.join.rawValue, token: token)
        case .user(let user): WhoAmI(name: user.name, role: user.role.rawValue, token: user.token, expiresAt: user.expiresAt)
        case .agent(let agent): WhoAmI(name: agent.name, role: "agent")
        }
        return try Self.json(who)
    }

    /// `POST /v1/agents/reset`: the enrolled agent's credential stops working and the next
    /// enrollment under its name needs none; or a deleted agent may enroll again.
    func resetAgent(_ request: Request, _ context: MasterContext) async throws -> Response {
        try context.requireAdmin()
        let body = try await Self.decode(AgentResetRequest.self, from: request, limit: BodyLimit.small)
        let result = try await store.resetAgent(name: body.name, now: store.clock.now())
        context.logger.notice("agent \(body.name) \(result.outcome == .reset ? "reset" : "let back") by \(context.callerName)")
        return try Self.json(result)
    }
}

extension MasterContext {
    /// Who made the call, for the log.
    var callerName: String {
        switch caller {
        case .anonymous: "anonymous"
        case .joiner(let token): token.map { "join token \($0)" } ?? "the join token"
        case .user(let user): user.token.map { "\(user.name) (\($0))" } ?? "the admin token"
        case .agent(let agent): "agent \(agent.name)"
        }
    }
}
