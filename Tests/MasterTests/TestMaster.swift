import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import PaddockMaster
import PaddockProtocol
import Testing

/// A master on a fresh SQLite file in a temp dir, driven in-process through its router.
struct TestMaster {
    static let admin = "admin-token"
    static let join = "join-token"
    let dir: String
    let master: Master

    /// `store` may wrap the real SQLite store (e.g. to cut the master off its database); `database`
    /// is a SQLite file written before (by an earlier schema, say) to open instead of a new one;
    /// `statements` is told every statement the store runs (see `SQLiteEngine.init`).
    init(leaseTimeout: Double = 30, trustedProxies: TrustedProxies = .none, database: String? = nil,
         store wrap: (SQLStore) -> any Store = { $0 }, statements: (@Sendable (StatementRun) -> Void)? = nil) throws {
        dir = NSTemporaryDirectory() + "paddock-mastertest-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var config = MasterConfig(joinToken: Self.join, adminToken: Self.admin, leaseTimeout: leaseTimeout)
        config.trustedProxies = trustedProxies
        let engine = try SQLiteEngine(path: database ?? dir + "/paddock.sqlite", statements: statements)
        master = Master(config: config, store: wrap(SQLStore(engine: engine)))
    }

    /// In-process through the router by default; `.live` serves it on a loopback port (a real TCP peer).
    func test<Value: Sendable>(_ setup: TestingSetup = .router, _ body: @Sendable (Client) async throws -> Value)
        async throws -> Value {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let app = Application(router: master.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        return try await app.test(setup) { client in try await body(Client(inner: client)) }
    }

    /// A thin JSON layer over the test client.
    struct Client: Sendable {
        let inner: any TestClientProtocol

        struct Reply: Sendable {
            let status: Int
            let body: Data
            var headers: HTTPFields = [:]
            func decode<T: Decodable>(_ type: T.Type) throws -> T { try WireJSON.decoder().decode(type, from: body) }
            var error: PaddockError? { try? decode(PaddockError.self) }
            var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }
        }

        func send(_ method: HTTPRequest.Method, _ uri: String, token: String? = TestMaster.admin,
                  body: Data? = nil, headers extra: HTTPFields = [:]) async throws -> Reply {
            var headers: HTTPFields = [.contentType: "application/json"]
            if let token { headers[.authorization] = "Bearer \(token)" }
            headers.append(contentsOf: extra)
            return try await inner.execute(uri: uri, method: method, headers: headers,
                                           body: body.map { ByteBuffer(bytes: $0) }) { response in
                Reply(status: Int(response.status.code), body: Data(response.body.readableBytesView),
                      headers: response.headers)
            }
        }

        func send<T: Encodable>(_ method: HTTPRequest.Method, _ uri: String, token: String? = TestMaster.admin,
                                json: T, headers: HTTPFields = [:]) async throws -> Reply {
            try await send(method, uri, token: token, body: try WireJSON.encoder().encode(json), headers: headers)
        }

        func sendText(_ method: HTTPRequest.Method, _ uri: String, token: String? = TestMaster.admin,
                      _ text: String) async throws -> Reply {
            try await send(method, uri, token: token, body: Data(text.utf8))
        }

        /// Enrolls an agent; returns its id and credential.
        func enroll(_ name: String, cpus: Double = 4, ram: Int64 = 8 << 30, tags: [String] = []) async throws
            -> (AgentID, String) {
            let reply = try await send(.post, "/v1/agents", token: TestMaster.join, json: EnrollRequest(
                name: name, resources: ResourceVector(cpus: cpus, ram: ram), tags: tags, version: "test"))
            #expect(reply.status == 201)
            let enrolled = try reply.decode(EnrollResponse.self)
            return (enrolled.id, enrolled.credential)
        }

        func submit(_ job: JobSubmission) async throws -> JobView {
            let reply = try await send(.post, "/v1/jobs", json: job)
            #expect(reply.status == 201, "\(String(decoding: reply.body, as: UTF8.self))")
            return try reply.decode(JobView.self)
        }

        func claim(_ agent: AgentID, _ credential: String, slots: Int = 8) async throws -> [TaskLease] {
            let reply = try await send(.post, "/v1/agents/\(agent)/claim", token: credential,
                                       json: ClaimRequest(slots: slots, wait: 0))
            #expect(reply.status == 200)
            return try reply.decode(ClaimResponse.self).leases
        }

        func job(_ id: JobID) async throws -> JobView {
            try await send(.get, "/v1/jobs/\(id)").decode(JobView.self)
        }

        func task(_ id: TaskID) async throws -> TaskView {
            try await send(.get, "/v1/tasks/\(id)").decode(TaskView.self)
        }

        func jobCount() async throws -> Int {
            try await send(.get, "/v1/jobs?limit=1000").decode(Page<JobView>.self).items.count
        }
    }
}

func echoJob(_ name: String = "job", tasks: Int = 1, cpus: Double = 1) -> JobSubmission {
    JobSubmission(name: name, tasks: (0..<tasks).map {
        TaskSpec(name: "task \($0)", command: ["echo", "\($0)"],
                 requirements: TaskRequirements(resources: ResourceVector(cpus: cpus)))
    })
}

extension TestMaster.Client {
    /// `POST /v1/agents/{id}/exchange` as the agent (its credential), expecting 200.
    func exchange(_ agent: AgentID, _ credential: String, _ request: ExchangeRequest) async throws -> ExchangeResponse {
        let reply = try await send(.post, "/v1/agents/\(agent)/exchange", token: credential, json: request)
        #expect(reply.status == 200, "\(String(decoding: reply.body, as: UTF8.self))")
        return try reply.decode(ExchangeResponse.self)
    }
}
