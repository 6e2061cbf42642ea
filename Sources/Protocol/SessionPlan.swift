import Foundation

/// How a task asks its agent to run it inside a session (an OpenJD step's environments): the
/// session's name within the job, and for each environment, outermost first, a script that enters
/// it and one that exits it. The task's own `command` is only its action.
///
/// It travels in the task's environment, `PADDOCK_SESSION` (JSON), as the path mapping rules do:
/// the task has no field of its own for it, so the master stores and leases it unchanged. The agent
/// decodes it strictly (`SessionPlan.from(env:)`) and does not pass the variable to the processes.
///
/// The agent keeps one session per (job, `key`): the first task of the key it runs enters the
/// environments in order; later ones run their action with the variables the environments set;
/// the environments are exited, innermost first, after the session's last task there.
public struct SessionPlan: Sendable, Equatable {
    /// The session's name within its job (an OpenJD step's name).
    public var key: String
    /// Outermost (the job's first environment) first.
    public var environments: [Environment]

    public struct Environment: Sendable, Equatable {
        /// The environment's name, for messages (`openjd: environment 'NAME': onEnter failed ...`).
        public var name: String
        /// `sh -c` text: writes the environment's files, sets its variables, runs its `onEnter`, then
        /// saves the environment it leaves (`env -0` into `$PADDOCK_SESSION_SNAPSHOT`). Fails when the
        /// `onEnter` fails.
        public var enter: String
        /// `sh -c` text that runs its `onExit`, if it has one; run with the environment as it was
        /// inside this level.
        public var exit: String?

        public init(name: String, enter: String, exit: String?) {
            self.name = name
            self.enter = enter
            self.exit = exit
        }
    }

    public init(key: String, environments: [Environment]) {
        self.key = key
        self.environments = environments
    }

    /// The task environment variable that carries the plan.
    public static let variable = "PADDOCK_SESSION"
    /// Set by the agent for the session's processes: the session's directory (OpenJD's
    /// `Session.WorkingDirectory`), shared by the session's tasks.
    public static let directoryVariable = "PADDOCK_SESSION_DIR"
    /// Set by the agent for an enter script: where it saves the environment it leaves.
    public static let snapshotVariable = "PADDOCK_SESSION_SNAPSHOT"
    /// At most this many environments in one session (16 environment templates and the job's and the step's own).
    public static let maxEnvironments = 64

    /// The plan a task carries, if it carries one; a plan that does not decode or breaks a rule is an
    /// error that says why (the agent fails the task with it).
    public static func from(env: [String: String]) throws -> SessionPlan? {
        guard let text = env[variable] else { return nil }
        return try WireJSON.decoder().decode(SessionPlan.self, from: Data(text.utf8))
    }

    /// The JSON text of `PADDOCK_SESSION`.
    public var json: String {
        let data = (try? WireJSON.encoder().encode(self)) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

extension SessionPlan: Codable {
    enum CodingKeys: String, CodingKey, CaseIterable { case key, environments }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        key = try c.decode(String.self, forKey: .key)
        environments = try c.decode([Environment].self, forKey: .environments)
        try decoder.validate(self)
    }
}

extension SessionPlan.Environment: Codable {
    enum CodingKeys: String, CodingKey, CaseIterable { case name, enter, exit }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        enter = try c.decode(String.self, forKey: .enter)
        exit = try c.decodeIfPresent(String.self, forKey: .exit)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(enter, forKey: .enter)
        try c.encodeIfPresent(exit, forKey: .exit)
    }
}

extension SessionPlan: ValidatedAfterDecoding {
    /// The key and names are names (one line, bounded); the scripts are `sh -c` arguments (no NUL,
    /// at most an argument's bytes: the variable itself is bounded by an env value's).
    func validate() throws(BrokenRule) {
        try require(FieldRules.name(key), at: "key")
        try require(!environments.isEmpty && environments.count <= Self.maxEnvironments ? nil
                    : "a session has 1 to \(Self.maxEnvironments) environments", at: "environments")
        for (i, environment) in environments.enumerated() {
            try require(FieldRules.name(environment.name), at: "environments[\(i)].name")
            let scripts = [environment.enter] + (environment.exit.map { [$0] } ?? [])
            try require(scripts.allSatisfy({ !$0.isEmpty && $0.utf8.count <= Limits.argLength && !$0.contains("\0") }) ? nil
                        : "enter and exit are sh scripts of 1 to \(Limits.argLength) bytes, no NUL", at: "environments[\(i)]")
        }
    }
}

/// What a session's environments changed in the environment they were entered with: the variables
/// they set (a value) or unset (nil). Computed by the agent from what an enter script saved
/// (`env -0`), applied to the environment of every later process of the session.
public struct SessionVariables: Sendable, Equatable {
    public var changes: [String: String?]

    public init(changes: [String: String?] = [:]) { self.changes = changes }

    /// What the shell itself sets or keeps up to date, and the agent's own note to the enter script:
    /// not the environments' doing.
    static let shellOwn: Set<String> = ["PWD", "OLDPWD", "SHLVL", "_", SessionPlan.snapshotVariable]

    /// The changes from `base` to the environment `snapshot` holds (`NAME=VALUE` entries, NUL-separated,
    /// as `env -0` writes them). An entry that is not `NAME=VALUE` is skipped.
    public init(from base: [String: String], snapshot: Data) {
        var after: [String: String] = [:]
        for entry in snapshot.split(separator: 0, omittingEmptySubsequences: true) {
            let text = String(decoding: entry, as: UTF8.self)
            guard let equals = text.firstIndex(of: "="), equals != text.startIndex else { continue }
            after[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        var changes: [String: String?] = [:]
        for (name, value) in after where base[name] != value && !Self.shellOwn.contains(name) {
            changes[name] = .some(value)
        }
        for name in base.keys where after[name] == nil && !Self.shellOwn.contains(name) {
            changes[name] = .some(nil)
        }
        self.changes = changes
    }

    /// `environment` with these changes made.
    public func applied(to environment: [String: String]) -> [String: String] {
        var result = environment
        for (name, value) in changes {
            if let value { result[name] = value } else { result.removeValue(forKey: name) }
        }
        return result
    }
}
