import Foundation
import Hummingbird
import NIOCore
import PaddockProtocol

/// The handlers of API v1. `register` binds every `APIRoute` through an
/// exhaustive switch, so a route in the table cannot be left unserved.
public struct MasterAPI: Sendable {
    let store: any Store
    let config: MasterConfig
    /// Wakes claimers: work may be available.
    let wake: WakeSignal
    /// Wakes talkback long-polls: a command may be waiting.
    let commandWake: WakeSignal
    /// Wakes log followers: output arrived, or a run ended.
    let logWake: WakeSignal
    let stats: MasterStats
    /// Where each agent last called from, as this master saw it.
    let addresses: AgentAddresses
    /// Wakes dashboards' `GET /v1/changes`: what they show changed.
    let changes: WakeSignal
    /// Credentials the auth middleware let an exchange through with unchecked (the exchange checks them).
    let credentials: CredentialCache
    /// The agents' long-polls held now: their agents are alive (`LivenessKeeper`).
    let heldPolls: HeldPolls
    /// The held exchanges waiting for work, which a submission may lease to in its own transaction.
    let heldClaims = HeldClaims()
    /// The agents' capacities, for placement warnings.
    let capacities = AgentCapacityCache()

    public init(store: any Store, config: MasterConfig, wake: WakeSignal, commandWake: WakeSignal, logWake: WakeSignal,
                stats: MasterStats, addresses: AgentAddresses = AgentAddresses(), changes: WakeSignal = WakeSignal(.changes)) {
        self.init(store: store, config: config, wake: wake, commandWake: commandWake, logWake: logWake, stats: stats,
                  addresses: addresses, changes: changes, credentials: CredentialCache(), heldPolls: HeldPolls())
    }

    init(store: any Store, config: MasterConfig, wake: WakeSignal, commandWake: WakeSignal, logWake: WakeSignal,
         stats: MasterStats, addresses: AgentAddresses, changes: WakeSignal, credentials: CredentialCache,
         heldPolls: HeldPolls) {
        self.credentials = credentials
        self.heldPolls = heldPolls
        self.addresses = addresses
        self.changes = changes
        self.store = store
        self.config = config
        self.wake = wake
        self.commandWake = commandWake
        self.logWake = logWake
        self.stats = stats
    }

    typealias Handler = @Sendable (Request, MasterContext) async throws -> Response

    /// Whether the request is an agent's exchange (`APIRoute.exchange`).
    static func isExchange(_ method: HTTPRequest.Method, _ path: String) -> Bool {
        method == .post && path.hasPrefix("/v1/agents/") && path.hasSuffix("/exchange")
    }

    func register(on router: Router<MasterContext>) {
        for route in APIRoute.allCases {
            let path = RouterPath(route.path)
            let method: HTTPRequest.Method = switch route.method {
            case .get: .get
            case .post: .post
            case .put: .put
            case .patch: .patch
            case .delete: .delete
            }
            router.on(path, method: method, use: handler(for: route))
        }
    }

    func handler(for route: APIRoute) -> Handler {
        switch route {
        case .submitJob: submitJob
        case .listJobs: listJobs
        case .getJob: getJob
        case .listTasks: listTasks
        case .getTask: getTask
        case .getTaskLogs: getTaskLogs
        case .uploadTaskLogs: uploadTaskLogs
        case .startTask: startTask
        case .progressTask: progressTask
        case .finishTask: finishTask
        case .enrollAgent: enrollAgent
        case .listAgents: listAgents
        case .getAgent: getAgent
        case .heartbeat: heartbeat
        case .claim: claim
        case .exchange: exchange
        case .healthz: healthz
        case .openapi: openapi
        case .patchJob: patchJob
        case .deleteJob: deleteJob
        case .cancelJob: cancelJob
        case .pauseJob: pauseJob
        case .resumeJob: resumeJob
        case .retryJob: retryJob
        case .patchTasks: patchTasks
        case .cancelTask: cancelTask
        case .retryTask: retryTask
        case .patchAgent: patchAgent
        case .deleteAgent: deleteAgent
        case .listCommands: listCommands
        case .sendCommand: sendCommand
        case .reportException: reportException
        case .listExceptions: listExceptions
        case .masterInfo: masterInfo
        case .prometheus: prometheus
        case .agentMetrics: agentMetrics
        case .installAgentScript: installAgentScript
        case .agentPackage: agentPackage
        case .jobGraph: jobGraph
        case .throughput: throughput
        case .changes: changesSince
        case .createToken: createToken
        case .listTokens: listTokens
        case .revokeToken: revokeToken
        case .whoami: whoami
        case .resetAgent: resetAgent
        }
    }

    // MARK: helpers shared by the route files

    /// Leases are granted on the database's clock (`LeaseClock`), never on this master's own.
    var leaseUntil: Date { store.clock.now().addingTimeInterval(config.leaseTimeout) }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try WireJSON.encoder().encode(value)
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Reads and decodes a JSON body of at most `limit` bytes: 413 above it, 400 for anything malformed.
    static func decode<T: Decodable>(_ type: T.Type, from request: Request, limit: Int) async throws -> T {
        let buffer = try await body(of: request, limit: limit)
        guard !NULGuard.jsonHasNUL(buffer.readableBytesView) else {
            throw PaddockError.invalid("strings must not contain NUL (\\u0000)")
        }
        do {
            return try WireJSON.decoder().decode(type, from: Data(buffer.readableBytesView))
        } catch {
            throw WireJSON.describe(error)
        }
    }

    static func body(of request: Request, limit: Int) async throws -> ByteBuffer {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw PaddockError.tooLarge("request body of \(length) bytes is over the limit of \(limit)")
        }
        do {
            return try await request.body.collect(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw PaddockError.tooLarge("request body is over the limit of \(limit) bytes")
        }
    }

    static func id<ID: PrefixedID>(_ type: ID.Type, _ context: MasterContext, what: String) throws -> ID {
        let text = context.parameters.get("id") ?? ""
        guard let id = ID(text) else { throw PaddockError.notFound("\(what) \(text.prefix(40))") }
        return id
    }

    static func query(_ request: Request, _ name: String) -> String? {
        request.uri.queryParameters[Substring(name)].map(String.init)
    }

    /// A boolean query parameter: `true` or `false`, nil when absent; anything else is a 400 naming it
    /// (a `follow=yes` read as false would be a silent surprise).
    static func flag(_ request: Request, _ name: String) throws -> Bool? {
        guard let text = query(request, name) else { return nil }
        switch text {
        case "true": return true
        case "false": return false
        default: throw PaddockError.invalid("\(name) is true or false", field: name)
        }
    }

    /// A long-poll's `wait` (seconds, 0 to `Limits.longPollSeconds`; 0 when not given).
    static func longPollWait(_ request: Request) throws -> Double {
        guard let text = query(request, "wait") else { return 0 }
        guard let value = Double(text), value.isFinite, value >= 0, value <= Limits.longPollSeconds else {
            throw PaddockError.invalid("wait is between 0 and \(Int(Limits.longPollSeconds)) seconds", field: "wait")
        }
        return value
    }

    static func page(_ request: Request) throws -> PageRequest {
        var page = PageRequest()
        if let limit = query(request, "limit") {
            guard let value = Int(limit), (1...Limits.maxPageSize).contains(value) else {
                throw PaddockError.invalid("limit must be between 1 and \(Limits.maxPageSize)", field: "limit")
            }
            page.limit = value
        }
        if let cursor = query(request, "cursor") {
            guard let value = Int64(cursor), value >= 0 else { throw PaddockError.invalid("bad cursor", field: "cursor") }
            page.after = value
        }
        return page
    }

    /// How long `/healthz` waits for the database: a hung database must not hang the health check
    /// (a frontend would then hang with it instead of taking this master out of rotation).
    static let healthDeadline: Duration = .seconds(2)

    /// 200 when the database answers within the deadline, else 503 `unavailable` (via `ErrorMiddleware`).
    func healthz(_ request: Request, _ context: MasterContext) async throws -> Response {
        try await withStoreDeadline(Self.healthDeadline, operation: "ping") { [store] in try await store.ping() }
        return try Self.json(["status": "ok", "store": store.backend])
    }

    func openapi(_ request: Request, _ context: MasterContext) async throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/yaml"],
                 body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.yaml)))
    }
}
