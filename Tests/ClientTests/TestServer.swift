import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import Synchronization

/// What the test server saw: connections (by the client's port) opening and closing, the
/// requests' Authorization headers and ports, and the long-polls it is holding.
final class ServerLog: Sendable {
    struct Seen {
        var opened: [Int] = []
        var closed: Set<Int> = []
        var authorizations: [String] = []
        var requestPorts: [Int] = []
        var holding: [Int] = []
        var streamReleased = false
        var secondChunkSent = false
    }
    let seen = Mutex(Seen())

    func read<T: Sendable>(_ body: (Seen) -> T) -> T { seen.withLock { body($0) } }
    func update(_ body: (inout Seen) -> Void) { seen.withLock { body(&$0) } }
}

/// Notes each connection's opening and closing (its input closed or the channel gone) in the log.
final class ConnectionWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    let log: ServerLog
    private var port: Int?

    init(log: ServerLog) { self.log = log }

    func handlerAdded(context: ChannelHandlerContext) {
        port = context.channel.remoteAddress?.port
        if let port { log.update { $0.opened.append(port) } }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { noteClosed() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        noteClosed()
        context.fireChannelInactive()
    }

    private func noteClosed() {
        if let port { log.update { _ = $0.closed.insert(port) } }
    }
}

/// The request context of the test server: the client's port (one per connection).
struct TestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let remotePort: Int

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remotePort = source.channel.remoteAddress?.port ?? -1
    }
}

struct Ping: Codable, Sendable { var name: String }
struct Echo: Codable, Sendable {
    var method: String
    var authorization: String
    var contentType: String
    var query: String
    var name: String?
    var port: Int
}

/// A real HTTP/1.1 server on 127.0.0.1 (port 0), run in-process for the duration of a test.
struct TestServer: Sendable {
    let port: Int
    let log: ServerLog
    let scheme: String

    var url: URL { URL(string: "\(scheme)://127.0.0.1:\(port)") ?? URL(fileURLWithPath: "/") }

    /// Where the test certificates are: a CA and a server certificate for 127.0.0.1 it signed.
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// Runs `body` with a fresh server (over TLS with the fixture certificate when `tls`), then stops it.
    static func with<T: Sendable>(tls: Bool = false, _ body: @Sendable (TestServer) async throws -> T) async throws -> T {
        let log = ServerLog()
        let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "client-tests")
        logger.logLevel = .critical  // stopping by cancellation makes it log errors of torn-down connections
        let http1 = HTTPServerBuilder.http1(configuration: .init(additionalChannelHandlers: [ConnectionWatcher(log: log)]))
        let server: HTTPServerBuilder
        if tls {
            let key = try NIOSSLPrivateKey(file: fixtures.appendingPathComponent("server-key.pem").path, format: .pem)
            let chain = try NIOSSLCertificate.fromPEMFile(fixtures.appendingPathComponent("server.pem").path)
            let configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                                        privateKey: .privateKey(key))
            server = try .tls(http1, tlsConfiguration: configuration)
        } else {
            server = http1
        }
        let app = Application(router: router(log), server: server,
                              configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: nil),
                              onServerRunning: { channel in portSink.yield(channel.localAddress?.port ?? 0) },
                              logger: logger)
        let running = Task { try await app.runService(gracefulShutdownSignals: []) }
        func stop() async {
            running.cancel()
            _ = await running.result
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            await stop()
            throw TestFailure("the test server did not start")
        }
        do {
            let value = try await body(TestServer(port: port, log: log, scheme: tls ? "https" : "http"))
            await stop()
            return value
        } catch {
            await stop()
            throw error
        }
    }

    static func router(_ log: ServerLog) -> Router<TestContext> {
        let router = Router(context: TestContext.self)
        // Echoes what the client sent.
        router.post("/v1/echo") { request, context -> Response in
            try await echo(request, context, log)
        }
        router.get("/v1/echo") { request, context -> Response in
            try await echo(request, context, log)
        }
        // The master's own JSON error.
        router.post("/v1/conflict") { _, _ -> Response in
            json(.conflict, #"{"error":"stale_epoch","message":"the lease no longer counts"}"#)
        }
        // What a frontend with no master behind it answers.
        router.get("/v1/gateway") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "text/html"
            return Response(status: .badGateway, headers: headers,
                            body: .init(byteBuffer: ByteBuffer(string: "<html><body><h1>502 Bad Gateway</h1></body></html>")))
        }
        // A long-poll that answers after 30 s, or ends early when its connection closes.
        router.get("/v1/hold") { _, context -> Response in
            log.update { $0.holding.append(context.remotePort) }
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline, !log.read({ $0.closed.contains(context.remotePort) }) {
                try await Task.sleep(for: .milliseconds(20))
            }
            return json(.ok, "{}")
        }
        // Two chunks: the second only once the test says it has read the first.
        router.get("/v1/stream") { _, _ -> Response in
            Response(status: .ok, body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: "first\n"))
                let deadline = ContinuousClock.now + .seconds(30)
                while ContinuousClock.now < deadline, !log.read({ $0.streamReleased }) {
                    try await Task.sleep(for: .milliseconds(10))
                }
                log.update { $0.secondChunkSent = true }
                try await writer.write(ByteBuffer(string: "second\n"))
                try await writer.finish(nil)
            })
        }
        // The head and a first chunk at once, then nothing for 30 s (a deadline must cover the body).
        router.get("/v1/stall") { _, context -> Response in
            Response(status: .ok, body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: "["))
                let deadline = ContinuousClock.now + .seconds(30)
                while ContinuousClock.now < deadline, !log.read({ $0.closed.contains(context.remotePort) }) {
                    try await Task.sleep(for: .milliseconds(20))
                }
                try await writer.write(ByteBuffer(string: "]"))
                try await writer.finish(nil)
            })
        }
        // 65 MiB in 1 MiB chunks (no Content-Length): over the client's 64 MiB limit.
        router.get("/v1/huge") { _, _ -> Response in
            Response(status: .ok, body: ResponseBody { writer in
                let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 1 << 20)
                for _ in 0..<65 { try await writer.write(chunk) }
                try await writer.finish(nil)
            })
        }
        // An error page of 1 MiB: the client keeps only its start.
        router.get("/v1/big-error") { _, _ -> Response in
            Response(status: .serviceUnavailable,
                     body: .init(byteBuffer: ByteBuffer(repeating: UInt8(ascii: "e"), count: 1 << 20)))
        }
        return router
    }

    static func echo(_ request: Request, _ context: TestContext, _ log: ServerLog) async throws -> Response {
        let authorization = request.headers[.authorization] ?? ""
        log.update {
            $0.authorizations.append(authorization)
            $0.requestPorts.append(context.remotePort)
        }
        let body = try await request.body.collect(upTo: 1 << 20)
        let ping = body.readableBytes > 0 ? try JSONDecoder().decode(Ping.self, from: Data(body.readableBytesView)) : nil
        let echo = Echo(method: request.method.rawValue, authorization: authorization,
                        contentType: request.headers[.contentType] ?? "", query: request.uri.query ?? "",
                        name: ping?.name, port: context.remotePort)
        return json(.ok, String(decoding: try JSONEncoder().encode(echo), as: UTF8.self))
    }

    static func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Polls `condition` until it holds, or fails after `timeout` seconds (a generous bound, not a wait).
func eventually(_ what: String, timeout: Double = 10, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(timeout)
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw TestFailure("timed out after \(timeout) s waiting for \(what)")
}
