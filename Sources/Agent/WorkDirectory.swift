import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A run's scratch directory. Made and removed with plain system calls: most runs leave it empty,
/// and FileManager's walk of an empty directory costs more than a short task's own run.
///
/// A run's directory that its run left empty and untouched, with nothing of the run left to write
/// into it (its cgroup was empty at its end: the caller says so by recycling rather than removing),
/// is kept as a spare (`.spare-N` beside it) and renamed into the next run's place: a rename
/// changes one directory entry, where a mkdir and an rmdir each allocated or freed an inode in the
/// agent's file system (60 µs of CPU and 100 µs of a slot's time per run here).
enum WorkDirectory {
    /// Spares by the directory that holds them.
    private static let spares = Mutex<[String: [String]]>([:])
    private static let numbers = Atomic<Int>(0)
    /// More spares than this in one directory are removed: a host's slots rarely exceed it.
    static let keepSpares = 64

    static func make(_ path: String) {
        let parent = parentDirectory(path)
        while let spare = spares.withLock({ $0[parent]?.popLast() }) {
            if rename(spare, path) == 0 { return }
            if errno == ENOTEMPTY || errno == EEXIST {
                // The run's directory is there already (an earlier run of the agent left it): used as
                // before, and the spare kept.
                spares.withLock { $0[parent, default: []].append(spare) }
                break
            }
            remove(spare)
        }
        if mkdir(path, 0o755) != 0 && errno == ENOENT {
            // The parent first, then the directory itself with the mode a spare is checked against.
            try? FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
            _ = mkdir(path, 0o755)
        }
    }

    /// Keeps the directory as a spare when its run left it as `make` made it: empty, the agent's,
    /// mode 755. Else removes it and whatever the run left in it.
    static func recycle(_ path: String) {
        let parent = parentDirectory(path)
        guard isPristine(path), spares.withLock({ ($0[parent]?.count ?? 0) < keepSpares }) else {
            remove(path)
            return
        }
        let spare = parent + "/.spare-\(numbers.add(1, ordering: .relaxed).newValue)"
        guard rename(path, spare) == 0 else {
            remove(path)
            return
        }
        spares.withLock { $0[parent, default: []].append(spare) }
    }

    /// Removes the directory and whatever the run left in it.
    static func remove(_ path: String) {
        if rmdir(path) != 0 && errno != ENOENT {
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    /// Removes the spares an earlier run of the agent left in `parent` (and forgets this run's).
    static func removeSpares(in parent: String) {
        spares.withLock { _ = $0.removeValue(forKey: parent) }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []
        for name in names where name.hasPrefix(".spare-") { remove(parent + "/" + name) }
    }

    /// Spares held now for `parent` (for tests).
    static func spareCount(in parent: String) -> Int { spares.withLock { $0[parent]?.count ?? 0 } }

    /// The mode `make`'s mkdir gives: 755 less the process's umask (from /proc: `umask()` can only
    /// be read by setting it, which would race other threads' file creations).
    static let madeMode: mode_t = {
        let status = ProcessLedger.readProcFile("/proc/self/status").map { String(decoding: $0, as: UTF8.self) } ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("Umask:") }
        let mask = line.flatMap { mode_t($0.dropFirst("Umask:".count).trimmingCharacters(in: .whitespaces), radix: 8) } ?? 0o022
        return 0o755 & ~mask
    }()

    /// Empty, owned by the agent's user and with the mode `make` gave it: what `make` hands the next run.
    static func isPristine(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return false }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & 0o7777 == madeMode, info.st_uid == geteuid(),
              let dir = fdopendir(fd) else {
            close(fd)
            return false
        }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let isDot = withUnsafeBytes(of: entry.pointee.d_name) { name in
                name[0] == UInt8(ascii: ".") && (name[1] == 0 || (name[1] == UInt8(ascii: ".") && name[2] == 0))
            }
            if !isDot { return false }
        }
        return true
    }

    private static func parentDirectory(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return String(path[..<slash])
    }
}
