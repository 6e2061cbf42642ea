import Foundation

/// How a task and its agent agree on path mapping, through the task's environment (the task has no
/// field of its own for it):
///
/// - `PADDOCK_RAW_PATH_<KEY>` (set by the job: an OpenJD PATH value): the agent sets `PADDOCK_PATH_<KEY>`
///   to the value mapped by the rules, which the task's command reads;
/// - `PADDOCK_JOB_PATH_MAPPING_RULES` (set by the job: its own rules, `pathmapping-1.0` JSON);
/// - `PADDOCK_PATH_MAPPING=true` (a Paddock task's `path_mapping: true`): the agent maps the task's
///   working directory, each argument of its command and each value of its own environment that is a
///   path under a rule's source (whole strings: `--out=/mnt/x` is left alone);
/// - the agent always sets `PADDOCK_PATH_MAPPING_RULES` (the rules that apply, job's then agent's, as
///   `pathmapping-1.0` JSON) and `PADDOCK_HAS_PATH_MAPPING_RULES` (`true` or `false`).
public enum PathMappingEnvironment {
    public static let rawPrefix = "PADDOCK_RAW_PATH_"
    public static let mappedPrefix = "PADDOCK_PATH_"
    public static let jobRules = "PADDOCK_JOB_PATH_MAPPING_RULES"
    public static let optIn = "PADDOCK_PATH_MAPPING"
    public static let rules = "PADDOCK_PATH_MAPPING_RULES"
    public static let hasRules = "PADDOCK_HAS_PATH_MAPPING_RULES"

    /// What a task is launched with once its paths are mapped.
    public struct Launch: Sendable, Equatable {
        public var argv: [String]
        public var environment: [String: String]
        public var cwd: String?
    }

    /// The rules that apply to a task: the job's (from `env`), then the agent's.
    public static func rules(env: [String: String], agent: PathMappingRules) -> PathMappingRules {
        let job = env[jobRules].flatMap { try? JSONDecoder().decode(PathMappingRules.self, from: Data($0.utf8)) }
        return PathMappingRules((job?.rules ?? []) + agent.rules)
    }

    /// `environment` is the task's full environment (the agent's facts and the task's own `taskEnv`).
    public static func prepare(argv: [String], environment: [String: String], taskEnv: [String: String], cwd: String?,
                               agent: PathMappingRules) -> Launch {
        let rules = rules(env: taskEnv, agent: agent)
        var env = environment
        env[Self.rules] = rules.json
        env[hasRules] = rules.rules.isEmpty ? "false" : "true"
        for (key, value) in taskEnv where key.hasPrefix(rawPrefix) && key.count > rawPrefix.count {
            env[mappedPrefix + key.dropFirst(rawPrefix.count)] = rules.map(value)
        }
        guard taskEnv[optIn] == "true", !rules.rules.isEmpty else { return Launch(argv: argv, environment: env, cwd: cwd) }
        for (key, value) in taskEnv where !key.hasPrefix("PADDOCK_") { env[key] = rules.map(value) }
        return Launch(argv: argv.map(rules.map), environment: env, cwd: cwd.map(rules.map))
    }
}
