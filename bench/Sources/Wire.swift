import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import PaddockProtocol

/// An answer of the master that is not 2xx, or no answer at all.
struct WireError: Error, CustomStringConvertible {
    let status: Int?
    let description: String
}

/// A JSON client of API v1 for the harness. Like the agent's `MasterClient`, but on a URLSession
/// the harness configures: simulated agents need thousands of connections open at once, and
/// `MasterClient` allows 16 per host.
struct Wire: Sendable {
    let base: URL
    let token: String
    let session: URLSession

    init(base: URL, token: String, session: URLSession) {
        self.base = base
        self.token = token
        self.session = session
    }

    /// A session that keeps up to `connections` connections to the master open.
    static func session(connections: Int) -> URLSession {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 600
        configuration.httpMaximumConnectionsPerHost = connections
        return URLSession(configuration: configuration)
    }

    func with(token: String) -> Wire { Wire(base: base, token: token, session: session) }
    func with(session: URLSession) -> Wire { Wire(base: base, token: token, session: session) }

    /// One request; the raw body of a 2xx answer, else `WireError`.
    func raw(_ method: String, _ path: String, query: [String: String] = [:], body: Data? = nil,
             timeout: Double = 120) async throws -> Data {
        var components = URLComponents(url: base.appendingPathComponent(path), resolvingAgainstBaseURL: false)
        if !query.isEmpty {
            components?.queryItems = query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        }
        guard let url = components?.url else { throw WireError(status: nil, description: "bad path \(path)") }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = method
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        if let body {
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await session.data(for: request)
        guard let http = response as? HTTPURLResponse else { throw WireError(status: nil, description: "not HTTP") }
        guard (200..<300).contains(http.statusCode) else {
            throw WireError(status: http.statusCode,
                            description: "\(method) \(path): \(http.statusCode) \(String(decoding: data.prefix(300), as: UTF8.self))")
        }
        return data
    }

    /// A JSON body in, a JSON answer out.
    func call<Reply: Decodable>(_ method: String, _ path: String, query: [String: String] = [:],
                                json body: (some Encodable)? = Optional<Int>.none, timeout: Double = 120,
                                as: Reply.Type = Reply.self) async throws -> Reply {
        let data = try await raw(method, path, query: query, body: try body.map { try WireJSON.encoder().encode($0) },
                                 timeout: timeout)
        return try WireJSON.decoder().decode(Reply.self, from: data)
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

    func masterInfo() async throws -> MasterInfo { try await call("GET", APIPath.master) }
}

/// Frame-range job templates, as JSON text: `count` tasks running `command`.
enum JobText {
    static func frames(_ name: String, count: Int, first: Int = 1, command: [String]) -> String {
        let argv = command.map { "\"\($0)\"" }.joined(separator: ",")
        return #"{"name":"\#(name)","frames":"\#(first)-\#(first + count - 1)","chunk":1,"command":[\#(argv)]}"#
    }
}
