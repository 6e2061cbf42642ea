import Foundation
import PaddockFootprint
import PaddockProtocol
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Remembers, on disk, the process group of every task this agent runs, so that
/// an agent killed with `kill -9` and started again kills what its previous run
/// left behind: the master requeues those tasks, and they must not also go on
/// running here (that would finish them twice).
///
/// A run's record goes into a slot file (`running/slot-N`) kept open and written in place for the
/// next runs: a file made and removed per run cost an inode's allocation and release on the agent's
/// file system each time, more than a short task's run.
public final class ProcessLedger: Sendable {
    let dir: String
    private struct Slots {
        var free: [Int32] = []
        var byTask: [TaskID: Int32] = [:]
        var opened: [Int32] = []
    }
    private let slots = Mutex(Slots())

    init(workDir: String) {
        dir = workDir + "/running"
        // One mkdir per run on the hot path: the work directory exists, this one usually does too.
        if mkdir(dir, 0o755) != 0 && errno == ENOENT {
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
    }

    deinit {
        slots.withLock { $0.opened.forEach { _ = close($0) } }
    }

    /// The task, its process group, then its cgroup directories, a line each, and `end` with the
    /// task again: a slot's earlier, longer record may go on after it, and a record torn by a crash
    /// mid-write ends with no `end` naming its task. Written plainly, not synced: the record serves an
    /// agent killed while its host stays up (after a reboot nothing it names runs any more), and an
    /// fsync per run would cost more than the run of a short task.
    func record(task: TaskID, processGroup: pid_t, cgroup: [String] = []) {
        let text = (["\(task)", "\(processGroup)"] + cgroup + ["end \(task)"]).joined(separator: "\n") + "\n"
        let slot: Int32? = slots.withLock { slots in
            if let slot = slots.byTask[task] { return slot }
            var slot = slots.free.popLast()
            if slot == nil {
                let fd = open(dir + "/slot-\(slots.opened.count)", O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
                if fd >= 0 {
                    slots.opened.append(fd)
                    slot = fd
                }
            }
            if let slot { slots.byTask[task] = slot }
            return slot
        }
        guard let slot else { return }
        _ = text.withCString { pwrite(slot, $0, strlen($0), 0) }
    }

    /// Marks the task's slot free (its first line no longer names a task) for the next run.
    func forget(task: TaskID) {
        guard let slot = slots.withLock({ $0.byTask.removeValue(forKey: task) }) else { return }
        _ = "-\n".withCString { pwrite(slot, $0, 2, 0) }
        slots.withLock { $0.free.append(slot) }
    }

    /// What one ledger file records: a slot file's run (nil when the slot is free or the record
    /// is torn), or a file named after its task (as agents before slot files wrote them).
    static func entry(name: String, text: String) -> (task: TaskID, group: pid_t?, cgroup: [String])? {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let task: TaskID
        if let named = TaskID(name) {
            task = named
        } else {
            guard name.hasPrefix("slot-"), let first = lines.first, let recorded = TaskID(first),
                  let end = lines.firstIndex(of: "end \(recorded)") else { return nil }
            task = recorded
            lines = Array(lines[1..<end])
        }
        lines = lines.filter { !$0.isEmpty }
        let group = lines.first.flatMap { pid_t($0.trimmingCharacters(in: .whitespaces)) }
        return (task, group, Array(lines.dropFirst()))
    }

    /// Kills every process of a recorded group that still carries its task's id in its environment
    /// (a recycled pid belongs to someone else and is left alone). Returns how many were killed.
    @discardableResult
    func reapOrphans() -> Int {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        var killed = 0
        for name in entries {
            defer { try? FileManager.default.removeItem(atPath: dir + "/" + name) }
            guard let text = try? String(contentsOfFile: dir + "/" + name, encoding: .utf8),
                  let (task, group, dirs) = Self.entry(name: name, text: text) else { continue }
            // Its cgroup holds every process the run started (a recycled pid cannot be in it).
            var cgroup = TaskCgroup()
            cgroup.dirs = dirs.filter { FileManager.default.fileExists(atPath: $0 + "/cgroup.procs") }
            cgroup.unified = cgroup.dirs.first { FileManager.default.fileExists(atPath: $0 + "/cgroup.kill") }
            if !cgroup.dirs.isEmpty {
                killed += cgroup.killAll() ?? 0
                cgroup.remove(waiting: .seconds(2))
            }
            guard let group, group > 1 else { continue }
            let marker = Data("PADDOCK_TASK_ID=\(task)\0".utf8)
            for pid in Self.processes(inGroup: group) {
                guard let environ = Self.readProcFile("/proc/\(pid)/environ"), environ.range(of: marker) != nil
                else { continue }
                if kill(pid, SIGKILL) == 0 { killed += 1 }
            }
        }
        return killed
    }

    /// A /proc file, whole (`ProcFile.read`); nil when it cannot be read.
    public static func readProcFile(_ path: String) -> Data? {
        ProcFile.read(path).map { Data($0) }
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
