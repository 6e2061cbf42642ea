import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// HAProxy in front of masters on loopback, run from the shipped `packaging/haproxy.cfg`, so a
/// test proves that file works. `haproxy -db` runs in the foreground as a child process; its
/// output (and its request log) goes to `haproxy.log` in its directory.
///
/// The generated copy of the shipped file differs only in:
///   - the frontend's `bind` line: `bind 127.0.0.1:PORT` (a free port), its TLS options kept with the
///     test certificate as `crt` (or dropped, `tls: false`);
///   - the backend's `server` lines: one `server masterN 127.0.0.1:PORT OPTIONS` per given
///     master, OPTIONS being those of the shipped file's first `server` line (its health check);
///   - in `global`, the lines a test cannot run with are dropped: `user`, `group`, `chroot`,
///     `daemon`, `pidfile`, `stats socket`, and `log` (replaced with `log stdout` so the request
///     log lands in `haproxy.log`);
///   - any `bind` in another section (e.g. a stats page) is dropped.
/// Everything else (timeouts, health checks, retries, headers) is as shipped.
///
///     let proxy = try await HAProxyServer.start(masters: [portA, portB])
///     // talk to proxy.url
///     proxy.stop()
public final class HAProxyServer: @unchecked Sendable {
    // @unchecked Sendable: every stored property is a `let` of a Sendable type except
    // `process`, which is only read and written while holding `lock`; `Process` is never
    // handed out.

    /// The frontend's port on 127.0.0.1.
    public let port: Int
    /// The master ports it forwards to.
    public let masters: [Int]
    /// Its directory: `haproxy.cfg` (the generated copy) and `haproxy.log`.
    public let dir: String
    public var configPath: String { dir + "/haproxy.cfg" }
    public var logPath: String { dir + "/haproxy.log" }
    /// Whether its frontend terminates TLS (as shipped), with the test certificate of
    /// Tests/ClientTests/Fixtures (127.0.0.1 and localhost, signed by `caFile`).
    public let tls: Bool
    /// `https://127.0.0.1:PORT` (`http://` without TLS)
    public var url: String { (tls ? "https" : "http") + "://127.0.0.1:\(port)" }
    /// The CA that signed the frontend's test certificate.
    public static var caFile: String { fixtures + "/ca.pem" }
    static var fixtures: String { repositoryRoot + "/Tests/ClientTests/Fixtures" }

    private let lock = NSLock()
    private var process: Process?

    public static let binary = "/usr/sbin/haproxy"
    /// Whether /usr/sbin/haproxy is installed.
    public static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: binary) }
    public static let unavailableReason =
        "HAProxy is not installed (no /usr/sbin/haproxy): run PADDOCK_TEST_DEPS=1 scripts/setup-debian.sh (apt-get install haproxy)"

    /// The repository's root, from this file's path (Tests/Support/HAProxyServer.swift).
    public static var repositoryRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }
    /// packaging/haproxy.cfg in the repository.
    public static var shippedConfigPath: String { repositoryRoot + "/packaging/haproxy.cfg" }

    private init(port: Int, masters: [Int], dir: String, tls: Bool) {
        self.tls = tls
        self.port = port
        self.masters = masters
        self.dir = dir
    }

    deinit {
        stop()
        TestDirectory.remove(dir)
    }

    /// Starts HAProxy on a free port with the shipped config rewritten for `masters` (ports on
    /// 127.0.0.1), and waits until its port accepts TCP connections. The masters need not be up:
    /// HAProxy's health checks take them in (2 good checks, 1 s apart, as shipped) and out.
    ///
    /// With `tls` (as shipped) the frontend serves the test certificate; without, plain HTTP (the
    /// bind line's TLS options dropped), e.g. for a benchmark comparable with earlier ones.
    public static func start(masters: [Int], tls: Bool = true) async throws -> HAProxyServer {
        guard isAvailable else { throw SupportError(unavailableReason) }
        guard !masters.isEmpty else { throw SupportError("HAProxyServer needs at least one master") }
        var lastError: (any Error)?
        // A free port can be taken before HAProxy binds it: try a few.
        for _ in 0..<3 {
            let dir = NSTemporaryDirectory() + (NSTemporaryDirectory().hasSuffix("/") ? "" : "/")
                + "paddock-haproxy-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let server = HAProxyServer(port: try freeLoopbackPort(), masters: masters, dir: dir, tls: tls)
            do {
                var certificate: String?
                if tls {
                    // HAProxy reads the certificate and its key from one file.
                    let pem = try String(contentsOfFile: fixtures + "/server.pem", encoding: .utf8)
                        + String(contentsOfFile: fixtures + "/server-key.pem", encoding: .utf8)
                    certificate = dir + "/frontend.pem"
                    try pem.write(toFile: dir + "/frontend.pem", atomically: true, encoding: .utf8)
                }
                try config(port: server.port, masters: masters, certificate: certificate)
                    .write(toFile: server.configPath, atomically: true, encoding: .utf8)
                try await server.launchAndWait()
                return server
            } catch {
                lastError = error
                server.stop()
                if !server.log().contains("cannot bind") { break }
            }
        }
        throw lastError ?? SupportError("HAProxy did not start")
    }

    /// The shipped config rewritten for a test by packaging/haproxy-loopback.sh, the rewrite the shell
    /// tests use too (see the type's comment for what changes): TLS with `certificate` (certificate
    /// and key in one PEM file), plain HTTP without.
    public static func config(port: Int, masters: [Int], certificate: String? = nil) throws -> String {
        let ran = try runCommand(["/bin/bash", repositoryRoot + "/packaging/haproxy-loopback.sh", shippedConfigPath, String(port),
                                  certificate ?? "-"] + masters.map(String.init),
                                 environment: ProcessInfo.processInfo.environment)
        guard ran.status == 0 else { throw SupportError("haproxy-loopback.sh failed (\(ran.status)): \(ran.errors)") }
        return ran.output
    }

    /// Stops HAProxy (SIGTERM, then SIGKILL after 5 s) and waits for its exit.
    public func stop() {
        guard let process = locked({ self.process }), process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    private func locked<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }

    /// Its output (startup messages, warnings about health checks, the request log).
    public func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    private func launchAndWait() async throws {
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        defer { try? handle.close() }
        handle.seekToEndOfFile()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["-db", "-f", configPath]
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        locked { self.process = process }
        let deadline = Date().addingTimeInterval(20)
        while !acceptsConnections(port: port) {
            guard process.isRunning else {
                throw SupportError("haproxy -db -f \(configPath) exited with \(process.terminationStatus):\n\(log())")
            }
            if Date() > deadline { throw SupportError("haproxy did not listen on 127.0.0.1:\(port) within 20 s:\n\(log())") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}
