#if canImport(Glibc)
import Glibc
#endif

/// The agent's limit on open files, raised to its hard limit at start. A reused cgroup keeps its
/// control files open (about nine each, up to `CgroupPool.capacity` idle), beside each run's pipes
/// and the agent's sockets and slot files: a shell's soft limit of 1 024 would not hold a wide
/// agent's. (The systemd unit sets 65 536 already; tasks inherit the limit as they do there.)
enum OpenFileLimit {
    /// The soft and hard limits now in force.
    static var current: (soft: rlim_t, hard: rlim_t)? {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        return (limit.rlim_cur, limit.rlim_max)
    }

    /// Raises the soft limit to the hard one; returns the soft limit before and after.
    @discardableResult
    static func raise() -> (before: rlim_t, after: rlim_t)? {
        guard let (soft, hard) = current else { return nil }
        guard soft < hard else { return (soft, soft) }
        var raised = rlimit(rlim_cur: hard, rlim_max: hard)
        if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised) != 0 { return (soft, soft) }
        return (soft, hard)
    }
}
