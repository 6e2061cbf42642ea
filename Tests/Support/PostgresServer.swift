import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A real, throwaway PostgreSQL for tests: Debian's server binaries (the newest major under
/// /usr/lib/postgresql), a fresh cluster made with `initdb` in a temporary directory, and
/// `postgres` run directly as a child process on a free loopback port. Nothing of the
/// machine's own clusters is used or touched.
///
/// PostgreSQL refuses to run as root: when this process is root, `initdb` and `postgres` run as
/// the `postgres` system user (made by Debian's package) through `setpriv`, which execs (so the
/// child we signal is `postgres` itself), and the directory is handed to that user.
///
///     let db = try await PostgresServer.start()
///     let url = try db.createDatabase("paddock")   // postgres://postgres@127.0.0.1:PORT/paddock
///     try await db.stop(); try await db.restart()
///
/// The directory (data, socket, `postgres.log`) is removed when the value goes away, unless
/// PADDOCK_KEEP_TEST_DIRS=1.
public final class PostgresServer: @unchecked Sendable {
    // @unchecked Sendable: every stored property is a `let` of a Sendable type except
    // `process`, which is read and written only while holding `lock` (see `withProcess`);
    // `Process` itself is never handed out, only its pid and `isRunning`, read under the lock.

    /// The TCP port on 127.0.0.1; the same across `stop`/`kill9`/`restart`.
    public let port: Int
    /// The temporary directory: `data/`, `socket/`, `postgres.log`.
    public let dir: String
    public var dataDir: String { dir + "/data" }
    public var socketDir: String { dir + "/socket" }
    public var logPath: String { dir + "/postgres.log" }
    /// The directory of the server binaries used (e.g. /usr/lib/postgresql/15/bin).
    public let binDir: String
    /// Serve TLS with this certificate and key (PEM), copied into the cluster's directory.
    let tls: (certificate: String, key: String)?

    private let lock = NSLock()
    private var process: Process?

    private init(port: Int, dir: String, binDir: String, tls: (certificate: String, key: String)? = nil) {
        self.port = port
        self.dir = dir
        self.binDir = binDir
        self.tls = tls
    }

    deinit {
        terminate()
        TestDirectory.remove(dir)
    }

    // MARK: Finding the binaries

    /// The newest `/usr/lib/postgresql/<major>/bin` that holds `initdb`, `postgres` and
    /// `pg_isready`, or nil. PADDOCK_PG_BIN overrides it (a directory with those binaries).
    public static var binaryDirectory: String? {
        let fm = FileManager.default
        let needed = ["initdb", "postgres", "pg_isready", "psql"]
        func complete(_ dir: String) -> Bool { needed.allSatisfy { fm.isExecutableFile(atPath: dir + "/" + $0) } }
        if let override = ProcessInfo.processInfo.environment["PADDOCK_PG_BIN"] {
            return complete(override) ? override : nil
        }
        let root = "/usr/lib/postgresql"
        let majors = ((try? fm.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap { name -> (Double, String)? in Double(name).map { ($0, name) } }
            .sorted { $0.0 > $1.0 }
        return majors.map { "\(root)/\($0.1)/bin" }.first(where: complete)
    }

    /// Whether PostgreSQL's server binaries are installed (and, when running as root, the
    /// `postgres` user exists to run them as).
    public static var isAvailable: Bool {
        binaryDirectory != nil && (geteuid() != 0 || postgresUser != nil)
    }

    /// Why `isAvailable` is false, in a sentence a test failure can show.
    public static let unavailableReason =
        "PostgreSQL is not installed (no /usr/lib/postgresql/<major>/bin with initdb, postgres, pg_isready, psql," +
        " or no postgres user to run it as root): run PADDOCK_TEST_DEPS=1 scripts/setup-debian.sh" +
        " (apt-get install postgresql)"

    private static var postgresUser: (uid: uid_t, gid: gid_t)? {
        guard let entry = getpwnam("postgres") else { return nil }
        return (entry.pointee.pw_uid, entry.pointee.pw_gid)
    }

    // MARK: Life cycle

    /// Makes a fresh cluster on a free port, starts it and waits until it accepts connections.
    /// `tls`: a certificate and key (PEM) the server offers to clients asking for TLS (`ssl=on`).
    public static func start(tls: (certificate: String, key: String)? = nil) async throws -> PostgresServer {
        guard isAvailable, let binDir = binaryDirectory else { throw SupportError(unavailableReason) }
        let asRoot = geteuid() == 0
        // As root the postgres user must reach the directory: /tmp, not a private TMPDIR.
        let base = asRoot ? "/tmp/" : NSTemporaryDirectory()
        var lastError: (any Error)?
        // A free port can be taken by someone else before postgres binds it: try a few.
        for _ in 0..<3 {
            let dir = base + (base.hasSuffix("/") ? "" : "/") + "paddock-pg-\(UUID().uuidString.prefix(8))"
            let server = PostgresServer(port: try freeLoopbackPort(), dir: dir, binDir: binDir, tls: tls)
            try await offThePool { try server.initialize() }
            do {
                try await server.launchAndWait()
                return server
            } catch {
                lastError = error
                server.terminate()
                if !server.log().contains("could not bind") && !server.log().contains("already in use") { throw error }
            }
        }
        throw lastError ?? SupportError("PostgreSQL did not start")
    }

    /// Fast shutdown (SIGINT: open sessions are rolled back and closed), then waits for the exit.
    public func stop() async throws {
        guard let pid = withProcess({ $0?.isRunning == true ? $0?.processIdentifier : nil }) else { return }
        kill(pid, SIGINT)
        let deadline = Date().addingTimeInterval(30)
        while isRunning {
            if Date() > deadline {
                terminate()
                throw SupportError("PostgreSQL on port \(port) did not stop within 30 s of SIGINT; killed.\n\(logTail())")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// A crash: SIGKILL to the postmaster and every backend it started (as a power cut would
    /// leave it); waits for the postmaster's exit. `restart()` then runs crash recovery.
    public func kill9() {
        guard let process = withProcess({ $0 }) , process.isRunning else { return }
        let pid = process.processIdentifier
        // Stop it first so that it forks nothing more while its children are collected.
        kill(pid, SIGSTOP)
        let children = Self.children(of: pid)
        kill(pid, SIGKILL)
        for child in children { kill(child, SIGKILL) }
        process.waitUntilExit()
        // The backends notice nothing (they were killed too), but wait for them to be gone so
        // that a restart does not find the old shared memory still attached.
        let deadline = Date().addingTimeInterval(10)
        while children.contains(where: Self.isAlive), Date() < deadline {
            usleep(20_000)
        }
    }

    /// Starts the server again on the same port and data directory (after `stop` or `kill9`;
    /// a running server is stopped first) and waits until it accepts connections.
    public func restart() async throws {
        if isRunning { try await stop() }
        try await launchAndWait()
    }

    /// SIGKILL if it still runs (the postmaster and its backends); for cleanup, e.g. in deinit.
    public func terminate() {
        kill9()
    }

    /// Kills the server and removes its directory (what going away does, for one that never does:
    /// a server kept for the whole test process).
    public func terminateAndRemove() {
        terminate()
        TestDirectory.remove(dir)
    }

    /// Whether the postmaster runs.
    public var isRunning: Bool { withProcess { $0?.isRunning ?? false } }

    // MARK: Using it

    /// Creates a database (a name of letters, digits and `_`) owned by the `postgres` superuser,
    /// and returns its URL: `postgres://postgres@127.0.0.1:PORT/NAME` (trust auth, no password).
    public func createDatabase(_ name: String) throws -> String {
        guard !name.isEmpty, name.count <= 63,
              name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            throw SupportError("'\(name)' is not a plain database name (letters, digits, _; at most 63)")
        }
        _ = try psql("CREATE DATABASE \"\(name)\"")
        return url(database: name)
    }

    /// The URL of a database on this server.
    public func url(database: String) -> String { "postgres://postgres@127.0.0.1:\(port)/\(database)" }

    /// Runs SQL with `psql` over TCP as the `postgres` superuser and returns what it prints
    /// (unaligned, tuples only: `psql -XAtq`); throws with psql's message when it fails.
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres") throws -> String {
        let result = try Self.run(binDir + "/psql", ["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
                                                     "-h", "127.0.0.1", "-p", String(port), "-U", "postgres",
                                                     "-d", database, "-c", sql])
        guard result.status == 0 else {
            throw SupportError("psql -c '\(sql)' on port \(port) exited with \(result.status): \(result.output)")
        }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The server's log (initdb's and postgres's output).
    public func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    // MARK: Internals

    private func setProcess(_ process: Process) {
        lock.lock()
        defer { lock.unlock() }
        self.process = process
    }

    private func withProcess<T>(_ body: (Process?) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(process)
    }

    private func logTail(_ lines: Int = 30) -> String {
        log().split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// Makes the directory (owned by the postgres user when root) and runs initdb in it.
    private func initialize() throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: socketDir, withIntermediateDirectories: true,
                               attributes: [.posixPermissions: 0o755])
        try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir)
        _ = fm.createFile(atPath: logPath, contents: nil, attributes: [.posixPermissions: 0o644])
        if geteuid() == 0, let user = Self.postgresUser {
            for path in [dir, socketDir, logPath] where chown(path, user.uid, user.gid) != 0 {
                throw SupportError("chown \(path) to postgres: errno \(errno)")
            }
        }
        let process = try spawn(binDir + "/initdb", ["-D", dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                                                     "--locale=C", "--no-sync", "--no-instructions"])
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw SupportError("initdb -D \(dataDir) exited with \(process.terminationStatus):\n\(logTail())")
        }
    }

    /// Starts `postgres` on `port` and waits (up to 30 s) until `pg_isready` says it accepts connections.
    private func launchAndWait() async throws {
        var ssl: [String] = []
        if let tls {
            // postgres wants its key owned by itself and readable by nobody else.
            let certificate = dir + "/server.pem", key = dir + "/server-key.pem"
            for (from, to) in [(tls.certificate, certificate), (tls.key, key)] {
                try? FileManager.default.removeItem(atPath: to)
                try FileManager.default.copyItem(atPath: from, toPath: to)
                chmod(to, 0o600)
                if geteuid() == 0, let user = Self.postgresUser { chown(to, user.uid, user.gid) }
            }
            ssl = ["-c", "ssl=on", "-c", "ssl_cert_file=\(certificate)", "-c", "ssl_key_file=\(key)"]
        }
        let process = try spawn(binDir + "/postgres", [
            "-D", dataDir, "-p", String(port), "-k", socketDir,
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=on",
            "-c", "max_connections=200", "-c", "shared_buffers=32MB",
            "-c", "unix_socket_permissions=0777", "-c", "log_min_messages=warning",
        ] + ssl)
        setProcess(process)
        let deadline = Date().addingTimeInterval(30)
        while true {
            guard process.isRunning else {
                throw SupportError("postgres on port \(port) exited with \(process.terminationStatus) while starting:\n\(logTail())")
            }
            let ready = try Self.run(binDir + "/pg_isready", ["-q", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres",
                                                              "-d", "postgres", "-t", "2"])
            if ready.status == 0 { return }
            if Date() > deadline {
                throw SupportError("postgres on port \(port) did not accept connections within 30 s:\n\(logTail())")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Runs a server binary with its output appended to `postgres.log`; as root, as the postgres user.
    private func spawn(_ executable: String, _ arguments: [String]) throws -> Process {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        defer { try? handle.close() }
        handle.seekToEndOfFile()
        let process = Process()
        if geteuid() == 0 {
            // setpriv execs the binary (runuser would stay in between as its parent and
            // swallow the signals we send).
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PG") }
        environment["LC_ALL"] = "C"
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    /// Runs a client binary to its end; its exit status and output (stdout and stderr).
    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PG") }
        environment["LC_ALL"] = "C"
        process.environment = environment
        let pipe = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// State and parent pid of a process, from /proc/PID/stat (nil once it is gone).
    private static func stat(of pid: pid_t) -> (state: Substring, parent: pid_t?)? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // After "(comm)": state, ppid, ...
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 1 else { return nil }
        return (fields[0], pid_t(fields[1]))
    }

    static func parent(of pid: pid_t) -> pid_t? { stat(of: pid)?.parent }

    /// Running, not yet a zombie.
    static func isAlive(_ pid: pid_t) -> Bool { stat(of: pid).map { $0.state != "Z" } ?? false }

    /// The pids whose parent is `pid`.
    static func children(of pid: pid_t) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { pid_t($0) }.filter { parent(of: $0) == pid }
    }
}
