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

    /// Retrying may help: the master is away, restarting, or overloaded.
    public var isRetryable: Bool {
        switch self {
        case .transport: true
        case .api(let error): error.status >= 500 || error.status == 429
        case .protocolMismatch: false
        }
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
        guard (200..<300).contains(http.statusCode) else {
            var error = (try? WireJSON.decoder().decode(PaddockError.self, from: data))
                ?? PaddockError(status: http.statusCode, code: "http_\(http.statusCode)",
                                message: String(decoding: data.prefix(300), as: UTF8.self))
            error.status = http.statusCode
            throw .api(error)
        }
        return data
    }

    /// For calls answered with no body (204).
    public struct Empty: Decodable, Sendable { public init() {} }
}
