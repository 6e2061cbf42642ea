import Foundation
#if canImport(Glibc)
import Glibc
#endif
import PaddockProtocol

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Real `paddock` processes on loopback: one master and any number of agents, each
/// logging to its own file in the farm's directory. Used by one measurement at a
/// time from one task (not Sendable); what child tasks need (`admin`, `url`) is Sendable.
final class Farm {
    static let joinToken = "bench-join"
    static let adminToken = "bench-admin"

    let dir: String
    let binary: String
    private(set) var port = 0
    private var processes: [String: Process] = [:]
    /// One connection pool for the farm's admin calls and real-agent-sized work.
    let session = Wire.session(connections: 64)

    init(binary: String, root: String, label: String) throws {
        self.binary = binary
        dir = root + "/" + label + "-" + UUID().uuidString.prefix(6)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    /// Where the harness finds `paddock`: $PADDOCK_BIN, else next to its own executable.
    static func locateBinary() -> String {
        if let override = ProcessInfo.processInfo.environment["PADDOCK_BIN"], !override.isEmpty { return override }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("paddock").path
    }

    var url: URL {
        // A literal loopback URL with a port always parses; fall back to the file URL of nothing rather than crash.
        URL(string: "http://127.0.0.1:\(port)") ?? URL(fileURLWithPath: "/")
    }
    var admin: Wire { Wire(base: url, token: Self.adminToken, session: session) }
    var join: Wire { Wire(base: url, token: Self.joinToken, session: session) }

    func pid(_ name: String) -> Int32? { processes[name].map(\.processIdentifier) }
    var masterPID: Int32? { pid("master") }
    func logPath(_ name: String) -> String { dir + "/\(name).log" }

    /// Starts a master on a free port and waits until it answers /healthz; the farm's URL is then
    /// this master's (see `route(through:)`). `store` is the master's `--store` (nil: SQLite in the
    /// farm's directory); `extra` more arguments. Returns the master's port.
    @discardableResult
    func startMaster(leaseTimeout: String = "30s", name: String = "master", store: String? = nil,
                     extra: [String] = [], port listen: Int = 0) async throws -> Int {
        let storeArguments = store.map { ["--store", $0] } ?? ["--data", dir + "/" + name]
        try launch(name, ["master", "--listen", "127.0.0.1:\(listen)"] + storeArguments +
                         ["--join-token", Self.joinToken, "--admin-token", Self.adminToken,
                          "--lease-timeout", leaseTimeout, "--log-level", "warning"] + extra)
        let line = try await waitForLine(in: logPath(name), containing: "listening on http://", timeout: 60)
        guard let value = line.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) else {
            throw BenchError("no port in '\(line)'")
        }
        port = value
        try await until("\(name) answers /healthz", timeout: 30) { (try? await admin.raw("GET", "/healthz")) != nil }
        return value
    }

    /// From now on the farm's URL (agents, admin calls) is 127.0.0.1:`port`, e.g. a frontend's.
    func route(through port: Int) { self.port = port }

    /// More arguments for every real agent, from `PADDOCK_BENCH_AGENT_ARGS` (split on spaces): a
    /// figure with and without an agent option in one sitting (e.g. `--warm-children 0`).
    static let extraAgentArguments: [String] = (ProcessInfo.processInfo.environment["PADDOCK_BENCH_AGENT_ARGS"] ?? "")
        .split(separator: " ").map(String.init)

    /// Starts a real agent offering `slots` CPUs and slots, and waits until the master lists it online.
    @discardableResult
    func startAgent(_ name: String, slots: Int, prefetch: String = "auto", logLevel: String = "info") async throws -> AgentID {
        try launch(name, ["agent", "--master", url.absoluteString, "--join-token", Self.joinToken, "--name", name,
                          "--work-dir", dir + "/" + name, "--cpus", String(slots), "--slots", String(slots),
                          "--ram", "1GiB", "--disk", "1GiB", "--prefetch", prefetch, "--log-level", logLevel]
                          + Self.extraAgentArguments)
        var found: AgentID?
        try await until("agent \(name) online", timeout: 60) {
            let page: Page<AgentView>? = try? await admin.call("GET", APIPath.agents)
            found = page?.items.first { $0.name == name && $0.state == .online }?.id
            return found != nil
        }
        guard let found else { throw BenchError("agent \(name) never came online") }
        // Let its long-poll (its claim and its talkback) reach the master.
        try await Task.sleep(for: .milliseconds(300))
        return found
    }

    /// SIGKILL to one process, waited for.
    func kill9(_ name: String) {
        guard let process = processes[name] else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERM to one process; waits (up to `timeout` s) for it to exit.
    func terminate(_ name: String, timeout: Double = 30) async throws {
        guard let process = processes[name] else { return }
        process.terminate()
        try await until("\(name) exits after SIGTERM", timeout: timeout) { !process.isRunning }
    }

    /// Kills everything the farm started (SIGKILL: nothing here needs a graceful end) and removes its files.
    func stop(keepFiles: Bool = false) {
        for process in processes.values where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        for process in processes.values { process.waitUntilExit() }
        processes = [:]
        if !keepFiles { try? FileManager.default.removeItem(atPath: dir) }
    }

    private func launch(_ name: String, _ arguments: [String]) throws {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw BenchError("no paddock binary at \(binary): build it (swift build --product paddock) or set PADDOCK_BIN")
        }
        let path = logPath(name)
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        handle.seekToEndOfFile()  // a restarted process goes on in its log
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        processes[name] = process
    }

    private func waitForLine(in path: String, containing text: String, timeout: Double) async throws -> String {
        var found: String?
        try await until("'\(text)' in \(path)", timeout: timeout) {
            let content = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            found = content.split(separator: "\n").last { $0.contains(text) }.map(String.init)
            return found != nil
        }
        return found ?? ""
    }

    /// Waits until the master counts `count` tasks succeeded (polling /v1/master every `every` seconds:
    /// 10 ms, as the peers' harness polls its done file, `../shared/peers/py/bench.py --poll-s`).
    func waitForSucceeded(_ count: Int, timeout: Double, every: Double = 0.01) async throws {
        let admin = self.admin
        try await until("\(count) tasks succeeded", timeout: timeout, every: every) {
            guard let info = try? await admin.masterInfo() else { return false }
            if info.tasks[.failed] > 0 { throw BenchError("\(info.tasks[.failed]) task(s) failed") }
            return info.tasks[.succeeded] >= count
        }
    }
}

/// Polls `condition` until it holds, or throws after `timeout` seconds.
func until(_ what: String, timeout: Double, every: Double = 0.05, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(max(1, Int(every * 1000))))
    }
    throw BenchError("timed out after \(timeout)s waiting for \(what)")
}

/// Runs `body` on a fresh farm and always stops the farm afterwards.
func withFarm<T>(_ context: BenchContext, _ label: String, _ body: (Farm) async throws -> T) async throws -> T {
    let farm = try Farm(binary: context.binary, root: context.root, label: label)
    do {
        let value = try await body(farm)
        farm.stop(keepFiles: context.keepFiles)
        return value
    } catch {
        farm.stop(keepFiles: true)
        throw BenchError("\(label): \(error) (files kept in \(farm.dir))")
    }
}
