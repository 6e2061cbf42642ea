import Hummingbird

/// A person's (or a tool's) successful write changes what dashboards show: a submission, a cancel, a
/// drain, a new token... Each answer below 400 to a request that is not a read wakes
/// `GET /v1/changes`. Agents' own writes say so where they change something visible (the exchange,
/// an authoritative heartbeat); their routine heartbeats and log uploads do not.
struct ChangeNoticeMiddleware: RouterMiddleware {
    typealias Context = MasterContext
    let changes: WakeSignal

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response = try await next(request, context)
        if request.method != .get, request.method != .head, response.status.code < 400 {
            if case .agent = context.caller {} else { await changes.notifyAll() }
        }
        return response
    }
}
