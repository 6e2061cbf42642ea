import Foundation
import PaddockClient
import PaddockProtocol

/// An answer of the master that is not 2xx, or no answer at all: `.status` (nil when there was no
/// answer) and a description.
typealias WireError = ClientError

/// A JSON client of API v1 for the harness: a thin wrapper of `MasterClient` on a connection pool
/// the harness sizes (simulated agents need thousands of connections open at once).
struct Wire: Sendable {
    let client: MasterClient
    let session: ConnectionPool

    var base: URL { client.baseURL }
    var token: String { client.token }

    init(base: URL, token: String, session: ConnectionPool) {
        client = MasterClient(baseURL: base, token: token, pool: session)
        self.session = session
    }

    /// A pool that keeps up to `connections` connections to the master open.
    static func session(connections: Int) -> ConnectionPool { ConnectionPool(connectionsPerHost: connections) }

    func with(token: String) -> Wire { Wire(base: base, token: token, session: session) }
    func with(session: ConnectionPool) -> Wire { Wire(base: base, token: token, session: session) }

    /// One request; the raw body of a 2xx answer, else `WireError`.
    func raw(_ method: String, _ path: String, query: [String: String] = [:], body: Data? = nil,
             headers: [String: String] = [:], timeout: Double = 120) async throws -> Data {
        try await client.raw(method, path, query: query, body: body, contentType: "application/json", headers: headers,
                             timeout: timeout)
    }

    /// A JSON body in, a JSON answer out.
    func call<Reply: Decodable>(_ method: String, _ path: String, query: [String: String] = [:],
                                json body: (some Encodable)? = Optional<Int>.none, timeout: Double = 120,
                                as: Reply.Type = Reply.self) async throws -> Reply {
        try await client.call(method, path, query: query, json: body, timeout: timeout, as: Reply.self)
    }

    /// A JSON body in, the answer ignored.
    func send(_ method: String, _ path: String, json body: some Encodable, timeout: Double = 120) async throws {
        _ = try await raw(method, path, body: try WireJSON.encoder().encode(body), timeout: timeout)
    }

    /// A raw JSON text in (frame templates are not expressible as a `JobSubmission` value), a job out.
    func submit(json text: String, timeout: Double = 600) async throws -> JobView {
        let data = try await raw("POST", APIPath.jobs, body: Data(text.utf8), timeout: timeout)
        return try WireJSON.decoder().decode(JobView.self, from: data)
    }

    /// A raw JSON text in, the job's ids out (`Prefer: return=minimal`): what a script submitting
    /// job after job reads of each answer.
    func submitMinimal(json text: String, timeout: Double = 600) async throws -> JobCreated {
        let data = try await raw("POST", APIPath.jobs, body: Data(text.utf8), headers: ["Prefer": "return=minimal"],
                                 timeout: timeout)
        return try WireJSON.decoder().decode(JobCreated.self, from: data)
    }

    func masterInfo() async throws -> MasterInfo { try await call("GET", APIPath.master) }
}

/// Frame-range job templates, as JSON text: `count` tasks running `command`.
enum JobText {
    static func frames(_ name: String, count: Int, first: Int = 1, command: [String]) -> String {
        let argv = command.map { "\"\($0)\"" }.joined(separator: ",")
        return #"{"name":"\#(name)","frames":"\#(first)-\#(first + count - 1)","chunk":1,"command":[\#(argv)]}"#
    }

    /// A job of one task (also named `name`) that waits for `job` to succeed (`after`).
    static func oneTask(_ name: String, command: [String], after job: JobID) throws -> String {
        var submission = JobSubmission(name: name, tasks: [TaskSpec(name: name, command: command)])
        submission.after = [job]
        return String(decoding: try JSONEncoder().encode(submission), as: UTF8.self)
    }
}
