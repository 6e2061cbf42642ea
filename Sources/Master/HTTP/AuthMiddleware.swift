import Foundation
import Hummingbird
import PaddockProtocol

/// Establishes the caller from `Authorization: Bearer T`: the admin token,
/// the join token (enrolling only) or an agent's own credential. Everything
/// but `/healthz` and `/openapi.yaml` needs one.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = MasterContext
    let config: MasterConfig
    let store: any Store

    /// Health, the API document and Prometheus scrapes need no token (they reveal counts, no data).
    /// The agent install script and its package are open too: a new host has no token yet, and the
    /// script checks the package against the checksum it carries.
    static let open: Set<String> = [APIRoute.healthz.path, APIRoute.openapi.path, APIRoute.prometheus.path,
                                    APIRoute.installAgentScript.path]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if Self.open.contains(request.uri.path) || request.uri.path.hasPrefix("/packages/") {
            return try await next(request, context)
        }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw PaddockError.unauthorized
        }
        let token = String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces)
        guard !token.isEmpty, token.utf8.count <= 512 else { throw PaddockError.unauthorized }
        var context = context
        if constantTimeEqual(token, config.adminToken) {
            context.caller = .admin
        } else if constantTimeEqual(token, config.joinToken) {
            context.caller = .joiner
        } else if let agent = try await store.authenticate(credential: token) {
            context.caller = .agent(agent)
        } else {
            throw PaddockError.unauthorized
        }
        return try await next(request, context)
    }
}

/// Compares secrets in time that does not depend on where they differ.
func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    guard x.count == y.count else { return false }
    var difference: UInt8 = 0
    for i in x.indices { difference |= x[i] ^ y[i] }
    return difference == 0
}

extension MasterContext {
    func requireAdmin() throws {
        guard caller == .admin else { throw PaddockError.forbidden("this call needs the admin token") }
    }

    /// The calling agent, which must be `id` when one is named in the path.
    func requireAgent(_ id: AgentID? = nil) throws -> AgentIdentity {
        guard case .agent(let agent) = caller else { throw PaddockError.forbidden("this call needs an agent credential") }
        if let id, id != agent.id { throw PaddockError.forbidden("an agent may act only on itself") }
        return agent
    }
}
