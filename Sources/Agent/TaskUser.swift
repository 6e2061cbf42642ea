import CSpawn
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The user an agent's tasks run as (`--task-user`), rather than the agent's own: a task then cannot
/// read the agent's secrets (its enrollment file and join token, mode 0600, the agent's) nor signal
/// the agent. Looked up once when the agent starts; the agent needs root, or CAP_SETUID, CAP_SETGID
/// and CAP_CHOWN (the packaged unit gives them to the agent's own user), to switch.
public struct TaskUser: Sendable, Equatable {
    public var name: String
    public var uid: uid_t
    public var gid: gid_t
    /// Its supplementary groups (its primary one included), as `id -G` lists them.
    public var groups: [gid_t]
    public var home: String

    /// The user `name` (or a numeric uid) in the system's user database; nil when there is none.
    public static func lookUp(_ name: String) -> TaskUser? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16 * 1024)
        let found: Int32 = if let uid = uid_t(name) {
            getpwuid_r(uid, &entry, &buffer, buffer.count, &result)
        } else {
            getpwnam_r(name, &entry, &buffer, buffer.count, &result)
        }
        guard found == 0, result != nil, let userName = entry.pw_name.map({ String(cString: $0) }) else { return nil }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(userName, entry.pw_gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            guard getgrouplist(userName, entry.pw_gid, &groups, &count) >= 0 else { return nil }
        }
        return TaskUser(name: userName, uid: entry.pw_uid, gid: entry.pw_gid, groups: Array(groups.prefix(Int(count))),
                        home: entry.pw_dir.map { String(cString: $0) } ?? "/")
    }

    /// Why this process cannot run its tasks as `self`, or nil when it can: root can, and so can an
    /// agent under its own user with CAP_SETUID, CAP_SETGID (the switch) and CAP_CHOWN (handing the
    /// run its work directory).
    public func cannotSwitchReason() -> String? {
        if getuid() == 0 || uid == getuid() { return nil }
        // CAP_CHOWN 0, CAP_SETGID 6, CAP_SETUID 7 (linux/capability.h).
        let missing = [(0, "CAP_CHOWN"), (6, "CAP_SETGID"), (7, "CAP_SETUID")].filter { paddock_has_capability(Int32($0.0)) == 0 }
        guard !missing.isEmpty else { return nil }
        return "the agent runs as uid \(getuid()) without " + missing.map(\.1).joined(separator: ", ")
            + " and cannot switch users (run it as root, or give it those capabilities: AmbientCapabilities= in its unit)"
    }
}
