import Foundation
import PaddockProtocol

/// Everything `paddock agent` is told on its command line.
public struct AgentConfig: Sendable {
    public var masterURL: URL
    public var joinToken: String
    public var name: String
    public var workDir: String
    public var resources: ResourceVector
    public var tags: [String]
    /// At most this many tasks at once, whatever their requirements.
    public var slots: Int
    /// How long a claim waits at the master for work (long-poll).
    public var claimWait: Double = 50
    /// SIGTERM to SIGKILL when stopping a task.
    public var killGrace: Duration = .seconds(5)
    /// Assigned-but-not-started tasks to hold beyond what runs (other agents may steal them).
    public var prefetch: PrefetchPolicy = .auto
    /// What a graceful stop (SIGTERM) does with running tasks.
    public var onStop: StopPolicy = .requeue
    /// For an https:// master: trust only the CA certificates in this PEM file (else the system's).
    public var caFile: String?
    /// Path mapping rules (`pathmapping-1.0`) for the tasks this agent runs.
    public var pathMapping = PathMappingRules([])
    /// The cgroup each task runs in: its memory and process limits.
    public var containment = ContainmentPolicy()
    /// The user tasks run as (`--task-user`); nil: the agent's own.
    public var taskUser: TaskUser?
    /// How long an OpenJD session with no task running stays open for more of its tasks before its
    /// environments are exited (`--session-linger`).
    public var sessionLinger: Duration = .seconds(5)
    /// Whether the agent, when idle, drops its mapped code pages from its resident set
    /// (`ResidentPages`). Pages are the process's: `paddock agent` says yes; an agent running inside
    /// another process (`paddock dev`, the tests) leaves that process's pages alone.
    public var releasesIdlePages = false

    public init(masterURL: URL, joinToken: String, name: String, workDir: String, resources: ResourceVector,
                tags: [String], slots: Int? = nil) {
        self.masterURL = masterURL
        self.joinToken = joinToken
        self.name = name
        self.workDir = workDir
        self.resources = resources
        self.tags = tags
        self.slots = slots ?? max(1, Int(resources.milliCPUs / 1000))
    }
}

/// What a graceful stop does with the tasks an agent runs.
public enum StopPolicy: String, Sendable, CaseIterable {
    /// Stop them (SIGTERM, then SIGKILL) and give them back to the queue at once, no attempt used.
    case requeue
    /// Let them finish; give back only those not started yet.
    case drain
}

/// The credential an agent received when it enrolled, kept in its work dir so
/// that a restarted agent is the same agent.
struct EnrollmentFile: Codable {
    var master: String
    var name: String
    var id: AgentID
    var credential: String

    static func path(in workDir: String) -> String { workDir + "/agent-enrollment.json" }

    static func load(workDir: String) -> EnrollmentFile? {
        guard let data = FileManager.default.contents(atPath: path(in: workDir)) else { return nil }
        return try? JSONDecoder().decode(EnrollmentFile.self, from: data)
    }

    /// Written to disk before the agent uses it: the master holds this name for this credential only,
    /// and an agent that lost it (a power cut after enrolling) could not enroll again without an admin.
    func save(workDir: String) throws {
        let data = try JSONEncoder().encode(self)
        let path = Self.path(in: workDir)
        let failed = { CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
        let fd = open(path + ".tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failed() }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == data.count, synced else { throw failed() }
        // rename(2) replaces atomically: a crash leaves the old file or the new one, never half of one;
        // the directory's fsync makes the rename itself durable.
        guard rename(path + ".tmp", path) == 0 else { throw failed() }
        let dir = open(workDir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 { _ = fsync(dir); close(dir) }
    }
}
