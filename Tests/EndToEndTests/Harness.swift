import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import PaddockClient
import PaddockProtocol
import PaddockTestSupport
import Testing

/// Real processes on loopback: the `paddock` binary built next to this test bundle,
/// started as a master and as agents, each with its own log file in the farm's dir.
final class Farm: @unchecked Sendable {
    // @unchecked: the mutable state (`processes`, `port`) is touched only from the test's
    // own task, sequentially; the class is shared with nothing concurrent.
    static let join = "e2e-join"
    static let admin = "e2e-admin"

    let dir: String
    let leaseTimeout: String
    /// The port clients use: the master's, or the frontend's in front of several.
    var port = 0
    /// An HTTPS master: its certificate and key (PEM); clients then trust `caFile`.
    /// HTTPS: the master's certificate and key (none: the master makes its own, `--tls-self-signed`
    /// among the extra arguments), and the CA file its clients trust.
    var tls: (certificate: String, key: String, caFile: String)?
    private var processes: [String: Process] = [:]

    init(leaseTimeout: String = "3s") throws {
        dir = try TestDirectory.make("paddock-e2e")
        self.leaseTimeout = leaseTimeout
    }

    deinit {
        for process in processes.values where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        TestDirectory.remove(dir)
    }

    static var binary: String {
        if let override = ProcessInfo.processInfo.environment["PADDOCK_BIN"] { return override }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // The test binary sits in .build/<triple>/debug/<bundle>.xctest (a file, or a directory on some setups).
        if dir.pathExtension == "xctest" { dir.deleteLastPathComponent() }
        return dir.appendingPathComponent("paddock").path
    }

    var url: String { (tls == nil ? "http" : "https") + "://127.0.0.1:\(port)" }
    var admin: MasterClient {
        if let caFile = tls?.caFile, let client = try? MasterClient(baseURL: URL(string: url)!, token: Self.admin, caFile: caFile) {
            return client
        }
        return MasterClient(baseURL: URL(string: url)!, token: Self.admin)
    }

    /// Starts the master (on a free port the first time, on the same one after) and waits for /healthz.
    func startMaster(_ extra: [String] = []) async throws {
        let listen = "127.0.0.1:\(port)"
        let log = try launch("master", ["master", "--listen", listen, "--data", dir + "/master",
                                        "--join-token", Self.join, "--admin-token", Self.admin,
                                        "--lease-timeout", leaseTimeout]
                                       + (tls.map { $0.certificate.isEmpty ? [] : ["--tls-cert", $0.certificate, "--tls-key", $0.key] } ?? [])
                                       + extra)
        if port == 0 {
            let line = try await waitForLine(in: log, containing: "listening on http")
            guard let value = line.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) else {
                throw FarmError("no port in '\(line)'")
            }
            port = value
        }
        try await eventually("master answers /healthz", timeout: 20) {
            (try? await admin.raw("GET", "/healthz")) != nil
        }
    }

    /// `environment` is added to the agent's own (its tasks see PATH and a few more of it).
    /// `prefix` runs the agent through another program (`setpriv ...` to start it under another user).
    func startAgent(_ name: String, _ extra: [String], environment: [String: String] = [:], prefix: [String] = []) throws {
        _ = try launch(name, ["agent", "--master", url, "--join-token", Self.join, "--name", name,
                              "--work-dir", dir + "/" + name] + extra, environment: environment, prefix: prefix)
    }

    /// `--ca-file` of the CA the farm's master or frontend is trusted by (none over plain HTTP).
    var caArguments: [String] { tls.map { ["--ca-file", $0.caFile] } ?? [] }

    /// The pid of a process the farm started.
    func pid(_ name: String) -> pid_t? { processes[name]?.processIdentifier }

    func kill9(_ name: String) {
        guard let process = processes[name] else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERM, and waits for the exit off the shared threads (a graceful stop takes seconds).
    func terminate(_ name: String) async throws {
        guard let process = processes[name] else { return }
        process.terminate()
        try await offThePool { process.waitUntilExit() }
    }

    /// Sends SIGTERM and returns how long the process took to exit, or nil when it still ran after `timeout`.
    func terminate(_ name: String, within timeout: Duration) async throws -> Duration? {
        guard let process = processes[name] else { throw FarmError("no process \(name)") }
        let start = ContinuousClock.now
        process.terminate()
        while process.isRunning {
            if ContinuousClock.now - start > timeout { return nil }
            try await Task.sleep(for: .milliseconds(20))
        }
        return ContinuousClock.now - start
    }

    func log(_ name: String) -> String {
        (try? String(contentsOfFile: dir + "/\(name).log", encoding: .utf8)) ?? ""
    }

    @discardableResult
    func launch(_ name: String, _ arguments: [String], environment: [String: String] = [:], prefix: [String] = []) throws -> String {
        let logPath = dir + "/\(name).log"
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        handle.seekToEndOfFile()
        let process = Process()
        let command = prefix + [Self.binary] + arguments
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, given in given }
        }
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        processes[name] = process
        return logPath
    }

    func waitForLine(in path: String, containing text: String) async throws -> String {
        var found: String?
        try await eventually("'\(text)' in \(path)", timeout: 20) {
            let content = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            found = content.split(separator: "\n").last { $0.contains(text) }.map(String.init)
            return found != nil
        }
        return found ?? ""
    }

    // MARK: API helpers

    func submit(_ job: JobSubmission) async throws -> JobView {
        try await admin.call("POST", APIPath.jobs, json: job)
    }

    func submitRaw(_ json: String) async throws -> JobView {
        let data = try await admin.raw("POST", APIPath.jobs, body: Data(json.utf8), contentType: "application/json")
        return try WireJSON.decoder().decode(JobView.self, from: data)
    }

    func job(_ id: JobID) async throws -> JobView { try await admin.call("GET", APIPath.job(id)) }
    func task(_ id: TaskID) async throws -> TaskView { try await admin.call("GET", APIPath.task(id)) }
    func tasks(job: JobID) async throws -> [TaskView] {
        let page: Page<TaskView> = try await admin.call("GET", APIPath.tasks, query: ["job": job.description, "limit": "1000"])
        return page.items
    }
    func agents() async throws -> [AgentView] {
        let page: Page<AgentView> = try await admin.call("GET", APIPath.agents)
        return page.items
    }
    func agent(named name: String) async throws -> AgentView? { try await agents().first { $0.name == name } }
    func logs(_ id: TaskID) async throws -> String {
        String(decoding: try await admin.raw("GET", APIPath.taskLogs(id)), as: UTF8.self)
    }

    /// Waits until the job has no task left to run, and returns its final tasks.
    /// Waits until the master has heard `count` more heartbeats of the agent (its `last_seen` moved on
    /// that often): an event that says the agent lived through that much of its loop.
    func heartbeats(of name: String, count: Int, timeout: Double = 30) async throws {
        var seen = try await agent(named: name)?.lastSeen
        var beats = 0
        try await eventually("\(count) heartbeats of \(name)", timeout: timeout) {
            let now = try await agent(named: name)?.lastSeen
            if let now, let last = seen, now > last { beats += 1 }
            seen = now ?? seen
            return beats >= count
        }
    }

    func waitForJob(_ id: JobID, timeout: Double = 60) async throws -> [TaskView] {
        try await eventually("job \(id) done", timeout: timeout) {
            guard let job = try? await job(id) else { return false }
            return [.succeeded, .failed, .cancelled].contains(job.state)
        }
        return try await tasks(job: id)
    }
}

struct FarmError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Polls `condition` every 100 ms until it holds, or fails the test after `timeout` seconds.
func eventually(_ what: String, timeout: Double, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw FarmError("timed out after \(timeout)s waiting for \(what)")
}

func shell(_ script: String, name: String = "task", cpus: Double = 1, tags: [String] = []) -> TaskSpec {
    TaskSpec(name: name, command: ["sh", "-c", script],
             requirements: TaskRequirements(resources: ResourceVector(cpus: cpus), tags: tags))
}
