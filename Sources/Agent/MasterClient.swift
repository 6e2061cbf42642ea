import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import PaddockProtocol

/// What can go wrong talking to the master.
public enum ClientError: Error, CustomStringConvertible, Sendable {
    /// The master could not be reached or the connection broke: worth retrying.
    case transport(String)
    /// The master answered with an error of its own (4xx/5xx).
    case api(PaddockError)
    /// The master answered something this client does not understand.
    case protocolMismatch(String)

    public var description: String {
        switch self {
        case .transport(let text): "cannot reach the master: \(text)"
        case .api(let error): error.message
        case .protocolMismatch(let text): "unexpected answer from the master: \(text)"
        }
    }

    /// Retrying may help: the master is away, restarting, or overloaded. A 502/503/504 is such a
    /// time whoever says it: a frontend with no healthy master behind it, or a master whose
    /// database does not answer (503 `unavailable`). Callers retry these with `Backoff` and keep
    /// what they have to report; only the master's own refusals (4xx) are final.
    public var isRetryable: Bool {
        switch self {
        case .transport: true
        case .api(let error): Self.isRetryable(status: error.status)
        case .protocolMismatch: false
        }
    }

    static func isRetryable(status: Int) -> Bool { status >= 500 || status == 429 || status == 408 }

    /// A non-2xx answer: the master's JSON error when it sent one, else (a frontend's HTML page,
    /// an empty body) an error of that status with the start of the body as its message.
    static func answer(status: Int, body: Data) -> ClientError {
        var error = (try? WireJSON.decoder().decode(PaddockError.self, from: body))
            ?? PaddockError(status: status, code: "http_\(status)", message: String(decoding: body.prefix(300), as: UTF8.self))
        error.status = status
        return .api(error)
    }

    public var status: Int? {
        if case .api(let error) = self { return error.status }
        return nil
    }
}

/// A small JSON client of API v1 over URLSession (libcurl on Linux), shared by
/// the agent and the CLI. Connections are kept alive and reused.
public struct MasterClient: Sendable {
    public let baseURL: URL
    public let token: String
    let session: URLSession

    public init(baseURL: URL, token: String) {
        self.baseURL = baseURL
        self.token = token
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 90
        configuration.httpMaximumConnectionsPerHost = 16
        session = URLSession(configuration: configuration)
    }

    public func with(token: String) -> MasterClient { MasterClient(baseURL: baseURL, token: token) }

    /// One call; the body is JSON-encoded, the answer JSON-decoded.
    public func call<Reply: Decodable>(_ method: String, _ path: String, query: [String: String] = [:],
                                       json body: (some Encodable)? = Optional<Int>.none, timeout: Double = 30,
                                       as: Reply.Type = Reply.self) async throws(ClientError) -> Reply {
        var data: Data?
        if let body {
            do { data = try WireJSON.encoder().encode(body) } catch { throw .protocolMismatch("cannot encode: \(error)") }
        }
        let reply = try await raw(method, path, query: query, body: data, contentType: "application/json", timeout: timeout)
        if Reply.self == Empty.self, let empty = Empty() as? Reply { return empty }
        do {
            return try WireJSON.decoder().decode(Reply.self, from: reply)
        } catch {
            throw .protocolMismatch("\(method) \(path): \(error)")
        }
    }

    /// One call with raw bytes in and out; a non-2xx answer becomes `.api`.
    public func raw(_ method: String, _ path: String, query: [String: String] = [:], body: Data? = nil,
                    contentType: String = "application/octet-stream", timeout: Double = 30) async throws(ClientError) -> Data {
        var components = URLComponents(url: baseURL.appendingPathComponent(path), resolvingAgainstBaseURL: false)
        if !query.isEmpty {
            components?.queryItems = query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        }
        guard let url = components?.url else { throw .protocolMismatch("bad path \(path)") }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = method
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        if let body {
            request.httpBody = body
            request.setValue(contentType, forHTTPHeaderField: "Content-Type")
        }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await session.data(for: request)
        } catch {
            throw .transport(error.localizedDescription)
        }
        guard let http = response as? HTTPURLResponse else { throw .protocolMismatch("not HTTP") }
        guard (200..<300).contains(http.statusCode) else { throw .answer(status: http.statusCode, body: data) }
        return data
    }

    /// For calls answered with no body (204).
    public struct Empty: Decodable, Sendable { public init() {} }
}
