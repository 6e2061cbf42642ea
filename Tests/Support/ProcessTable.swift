import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What /proc says about processes, for tests that check what is left running.
public enum ProcessTable {
    /// No such process any more, or one that has exited and waits to be reaped.
    public static func isGone(_ pid: pid_t) -> Bool { stat(pid).map { $0.state == "Z" } ?? true }

    /// A process with this pid exists, a zombie not reaped yet included.
    public static func exists(_ pid: pid_t) -> Bool { stat(pid) != nil }

    /// True for an exited process not reaped yet (and for one that is gone).
    public static func isZombie(_ pid: pid_t) -> Bool { isGone(pid) }

    /// Live children of `parent` whose name (`comm`) is `name`.
    public static func children(of parent: pid_t, named name: String) -> [pid_t] {
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid_t($0) }
        return pids.filter { pid in
            guard let entry = stat(pid) else { return false }
            return entry.parent == parent && entry.name == name && entry.state != "Z"
        }
    }

    /// `/proc/PID/stat`'s name, state and parent (the name may hold spaces and parentheses: it ends
    /// at the last ')').
    static func stat(_ pid: pid_t) -> (name: String, state: Character, parent: pid_t)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")") else { return nil }
        let name = String(text[text.index(after: open)..<close])
        let rest = text[text.index(after: close)...].split(separator: " ")
        guard rest.count >= 2, let state = rest[0].first, let parent = pid_t(rest[1]) else { return nil }
        return (name, state, parent)
    }
}
