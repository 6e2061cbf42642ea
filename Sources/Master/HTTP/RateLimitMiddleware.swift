import Crypto
import Foundation
import Hummingbird
import NIOCore
import PaddockProtocol

/// Who a request is charged to, after authentication: an agent by its id, any other token by its
/// hash (no secret is held), a caller without a token by its address (an IPv6 client by its /64,
/// which one host may hold whole).
enum RateLimitKey: Hashable, Sendable {
    case agent(Int64)
    case token([UInt8])
    case address([UInt8])

    init(caller: Caller, authorization: String?, client: IPAddress?) {
        if case .agent(let agent) = caller {
            self = .agent(agent.id.rawValue)
        } else if caller != .anonymous, let authorization {
            self = .token(Array(SHA256.hash(data: Data(authorization.utf8))))
        } else {
            let bytes = client?.bytes ?? []
            self = .address(bytes.count == 16 ? Array(bytes.prefix(8)) : bytes)
        }
    }
}

/// The per-client token bucket (issue 16): each token and each address without one has its own
/// bucket; a request finding it empty is answered 429 `rate_limited` with `Retry-After`, before
/// its route runs. Agents have buckets of their own figures (none by default: their heartbeats,
/// exchanges and long-polls are the farm's own work, paced by the master's answers). It runs after
/// authentication, so a refused token is answered 401 and charged to nobody.
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = MasterContext
    let clients: TokenBuckets<RateLimitKey>?
    let agents: TokenBuckets<RateLimitKey>?
    let stats: MasterStats

    init(clients: RateLimit?, agents: RateLimit?, stats: MasterStats) {
        self.stats = stats
        self.clients = clients.map { TokenBuckets($0) }
        self.agents = agents.map { TokenBuckets($0) }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let key = RateLimitKey(caller: context.caller, authorization: request.headers[.authorization], client: context.client)
        let buckets: TokenBuckets<RateLimitKey>?
        if case .agent = key { buckets = agents } else { buckets = clients }
        guard let buckets, let wait = buckets.take(key) else { return try await next(request, context) }
        stats.recordRateLimited()
        let seconds = max(1, Int(wait.seconds.rounded(.up)))
        let who = if case .address = key { "this address" } else { "this token" }
        context.logger.debug("rate limited: \(request.method.rawValue) \(request.uri.path) from \(context.clientName)")
        var response = ErrorMiddleware.response(.rateLimited(
            "too many requests from \(who) (at most \(RateLimit.figure(buckets.limit.rate))/s, bursts of \(RateLimit.figure(buckets.limit.burst))): retry in \(seconds) s"))
        response.headers[.retryAfter] = String(seconds)
        return response
    }
}
