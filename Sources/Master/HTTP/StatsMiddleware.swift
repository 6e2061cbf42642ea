import Hummingbird
import PaddockProtocol

/// Counts every request and times it. Long-polls (claims, talkback, followed logs) are counted
/// but not timed: their duration is the wait they asked for, not the master's speed.
struct StatsMiddleware: RouterMiddleware {
    typealias Context = MasterContext
    let stats: MasterStats

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let response = try await next(request, context)
        let path = request.uri.path
        // The exchange times itself: only the exchange knows whether it held a long-poll.
        if MasterAPI.isExchange(request.method, path) { return response }
        let longPoll = path.hasSuffix("/claim") || path.hasSuffix("/commands") && request.method == .get
            || request.uri.queryParameters["follow"] == "true"
        stats.recordRequest(longPoll ? nil : ContinuousClock.now - started)
        return response
    }
}
