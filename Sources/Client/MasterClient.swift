import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import PaddockProtocol

/// A small JSON client of API v1 on AsyncHTTPClient, shared by the agent, the CLI and the bench.
///
/// Connections come from a `ConnectionPool` (by default one per process) and are kept alive and
/// reused. Every call has a whole-request deadline (`timeout`: connecting, sending, the answer's
/// head and all of its body), and ends at once, closing its connection, when the calling task is
/// cancelled. Answers are read up to `answerLimit`; error answers' bodies up to `errorBodyLimit`.
public struct MasterClient: Sendable {
    public let baseURL: URL
    public let token: String
    let pool: ConnectionPool

    /// Largest answer body read (a bigger one is `.protocolMismatch`).
    public static let answerLimit = 64 << 20
    /// How much of an error answer's body is read (the rest is dropped with its connection).
    public static let errorBodyLimit = 64 << 10

    /// A client of the master at `baseURL` (http or https, with the system's trust store),
    /// on the process's shared connection pool.
    public init(baseURL: URL, token: String) {
        self.init(baseURL: baseURL, token: token, pool: .shared)
    }

    /// A client whose `https://` connections trust only the certificates in `caFile` (PEM); clients
    /// of the same CA file share one pool.
    public init(baseURL: URL, token: String, caFile: String) throws(ClientTLSError) {
        self.init(baseURL: baseURL, token: token, pool: try .trusting(caFile: caFile))
    }

    /// A client on a pool of the caller's (e.g. one allowing thousands of connections).
    public init(baseURL: URL, token: String, pool: ConnectionPool) {
        self.baseURL = baseURL
        self.token = token
        self.pool = pool
    }

    /// The same master and connections with another bearer token.
    public func with(token: String) -> MasterClient { MasterClient(baseURL: baseURL, token: token, pool: pool) }

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

    /// A long-poll call (claim, talkback): a call whose answer may take most of `timeout`. It
    /// holds a pooled connection of its own while it waits (kept alive for the next poll), costs
    /// nothing while idle, and ends at once when the calling task is cancelled.
    public func longPoll<Reply: Decodable>(_ method: String, _ path: String, query: [String: String] = [:],
                                           json body: (some Encodable)? = Optional<Int>.none, timeout: Double,
                                           as: Reply.Type = Reply.self) async throws(ClientError) -> Reply {
        try await call(method, path, query: query, json: body, timeout: timeout, as: Reply.self)
    }

    /// One call with raw bytes in and out; a non-2xx answer becomes `.api`.
    public func raw(_ method: String, _ path: String, query: [String: String] = [:], body: Data? = nil,
                    contentType: String = "application/octet-stream", headers: [String: String] = [:],
                    timeout: Double = 30) async throws(ClientError) -> Data {
        var built = try request(method, path, query: query, body: body, contentType: contentType)
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { built.headers.add(name: name, value: value) }
        let request = built
        let http = pool.http
        let seconds = Self.clamp(timeout)
        do {
            return try await Self.withDeadline(seconds: seconds) {
                let response = try await http.execute(request, deadline: .now() + .nanoseconds(Int64(seconds * 1e9)))
                return try await Self.read(response, method, path)
            }
        } catch {
            throw .from(error, method, request.url, timeout: seconds)
        }
    }

    /// For calls answered with no body (204).
    public struct Empty: Decodable, Sendable { public init() {} }

    // MARK: - Internals

    func request(_ method: String, _ path: String, query: [String: String], body: Data?,
                 contentType: String) throws(ClientError) -> HTTPClientRequest {
        var components = URLComponents(url: baseURL.appendingPathComponent(path), resolvingAgainstBaseURL: false)
        if !query.isEmpty {
            components?.queryItems = query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        }
        guard let url = components?.url, let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw .protocolMismatch("bad URL for \(path) at \(baseURL)")
        }
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = HTTPMethod(rawValue: method)
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "User-Agent", value: "paddock/\(PaddockVersion.current)")
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(data: body))
        }
        return request
    }

    /// The body of a 2xx answer (up to `answerLimit`); any other answer thrown as `.api`.
    static func read(_ response: HTTPClientResponse, _ method: String, _ path: String) async throws -> Data {
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else {
            throw ClientError.answer(status: status, body: try await prefix(of: response.body, upTo: errorBodyLimit))
        }
        if let length = response.headers.first(name: "content-length").flatMap({ Int($0) }), length > answerLimit {
            throw ClientError.protocolMismatch("\(method) \(path): an answer of \(length) bytes, over \(answerLimit >> 20) MiB")
        }
        return Data(buffer: try await response.body.collect(upTo: answerLimit))
    }

    /// At most the first `limit` bytes of a body; the rest is not read (its connection is closed).
    static func prefix(of body: HTTPClientResponse.Body, upTo limit: Int) async throws -> Data {
        var data = Data()
        for try await buffer in body {
            data.append(contentsOf: buffer.readableBytesView.prefix(limit - data.count))
            if data.count >= limit { break }
        }
        return data
    }

    /// Runs `operation`, cancelling it (and throwing `DeadlineExceeded`) after `seconds`.
    /// AsyncHTTPClient's own deadline ends at the answer's head; this one covers the body too.
    static func withDeadline<T: Sendable>(seconds: Double,
                                          _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await operation() }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else { throw DeadlineExceeded() }
            return value
        }
    }

    /// A timeout in seconds, kept to something a deadline can hold (0 s to 11 days).
    static func clamp(_ timeout: Double) -> Double {
        timeout.isNaN ? 30 : min(max(timeout, 0), 1_000_000)
    }
}
