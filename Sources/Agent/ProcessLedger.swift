import Foundation
import PaddockProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Remembers, on disk, the process group of every task this agent runs, so that
/// an agent killed with `kill -9` and started again kills what its previous run
/// left behind: the master requeues those tasks, and they must not also go on
/// running here (that would finish them twice).
public struct ProcessLedger: Sendable {
    let dir: String

    init(workDir: String) {
        dir = workDir + "/running"
        // One mkdir per run on the hot path: the work directory exists, this one usually does too.
        if mkdir(dir, 0o755) != 0 && errno == ENOENT {
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
    }

    /// The task's process group, then its cgroup directories, a line each. Written plainly, not
    /// synced: the record serves an agent killed while its host stays up (after a reboot nothing it
    /// names runs any more), and an fsync per run would cost more than the run of a short task.
    func record(task: TaskID, processGroup: pid_t, cgroup: [String] = []) {
        let text = (["\(processGroup)"] + cgroup).joined(separator: "\n") + "\n"
        let fd = open(dir + "/\(task)", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        defer { close(fd) }
        _ = text.withCString { write(fd, $0, strlen($0)) }
    }

    func forget(task: TaskID) {
        unlink(dir + "/\(task)")
    }

    /// Kills every process of a recorded group that still carries its task's id in its environment
    /// (a recycled pid belongs to someone else and is left alone). Returns how many were killed.
    @discardableResult
    func reapOrphans() -> Int {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        var killed = 0
        for name in entries {
            defer { try? FileManager.default.removeItem(atPath: dir + "/" + name) }
            guard TaskID(name) != nil,
                  let text = try? String(contentsOfFile: dir + "/" + name, encoding: .utf8) else { continue }
            let lines = text.split(separator: "\n").map(String.init)
            // Its cgroup holds every process the run started (a recycled pid cannot be in it).
            var cgroup = TaskCgroup()
            cgroup.dirs = lines.dropFirst().filter { FileManager.default.fileExists(atPath: $0 + "/cgroup.procs") }
            cgroup.unified = cgroup.dirs.first { FileManager.default.fileExists(atPath: $0 + "/cgroup.kill") }
            if !cgroup.dirs.isEmpty {
                killed += cgroup.killAll()
                cgroup.remove(waiting: .seconds(2))
            }
            guard let group = lines.first.flatMap({ pid_t($0.trimmingCharacters(in: .whitespaces)) }), group > 1 else { continue }
            let marker = Data("PADDOCK_TASK_ID=\(name)\0".utf8)
            for pid in Self.processes(inGroup: group) {
                guard let environ = Self.readProcFile("/proc/\(pid)/environ"), environ.range(of: marker) != nil
                else { continue }
                if kill(pid, SIGKILL) == 0 { killed += 1 }
            }
        }
        return killed
    }

    /// /proc files report a size of 0: read them to the end rather than by their size.
    public static func readProcFile(_ path: String) -> Data? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 { data.append(contentsOf: buffer[0..<n]) } else if n < 0 && errno == EINTR { continue } else { break }
        }
        return data
    }

    /// Pids whose process group is `group`, from /proc/PID/stat (field 5).
    public static func processes(inGroup group: pid_t) -> [pid_t] {
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid_t($0) }
        return pids.filter { pid in
            guard let data = readProcFile("/proc/\(pid)/stat"), case let stat = String(decoding: data, as: UTF8.self),
                  let close = stat.lastIndex(of: ")") else { return false }
            // After "pid (comm)": state, ppid, pgrp, ...
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && pid_t(fields[2]) == group
        }
    }
}
