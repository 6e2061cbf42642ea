import Hummingbird
import Logging

/// Decides each request's client address (`TrustedProxies.client`) before anything else runs, and
/// puts it on the request's logger so that every line about the request names who made it.
struct ClientAddressMiddleware: RouterMiddleware {
    typealias Context = MasterContext
    let trusted: TrustedProxies

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.client = trusted.client(peer: context.peerAddress, forwardedFor: Self.forwardedFor(request.headers))
        // Written out only if a line is logged.
        if let client = context.client { context.logger[metadataKey: "client"] = .stringConvertible(client) }
        return try await next(request, context)
    }

    /// Every `X-Forwarded-For` line, in order (a chain may be split over several).
    static func forwardedFor(_ headers: HTTPFields) -> [String] {
        headers.filter { $0.name.canonicalName == "x-forwarded-for" }.map(\.value)
    }
}
