import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A cgroup's control files, each opened once and then read and written in place (`pread` and
/// `pwrite` at offset 0: a control file answers its current value to every read from the start).
/// A reused cgroup serves many runs, and each run read and wrote about ten of its files: opening
/// each by its long path, every time, was a tenth of the agent's CPU on short tasks.
final class CgroupFiles: Sendable {
    private struct Key: Hashable {
        var path: String
        var writing: Bool
    }
    private let open = Mutex<[Key: Int32]>([:])

    deinit { closeAll() }

    /// The file's whole content, or nil when it cannot be read.
    func read(_ path: String) -> String? {
        guard let fd = descriptor(path, writing: false) else { return nil }
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        var offset: off_t = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, offset) }
            if n > 0 {
                data.append(contentsOf: buffer[0..<n])
                offset += off_t(n)
            } else if n < 0 && errno == EINTR {
                continue
            } else if n < 0 {
                forget(path, writing: false)
                return nil
            } else {
                break
            }
        }
        return String(decoding: data, as: UTF8.self)
    }

    func write(_ value: String, to path: String) throws(LaunchError) {
        guard let fd = descriptor(path, writing: true) else {
            throw LaunchError(description: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        let written = value.withCString { pwrite(fd, $0, strlen($0), 0) }
        guard written >= 0 else {
            let reason = String(cString: strerror(errno))
            forget(path, writing: true)
            throw LaunchError(description: "cannot write \(value) to \(path): \(reason)")
        }
    }

    /// Closes every file (before the cgroup's directories are removed).
    func closeAll() {
        let fds = open.withLock { open in
            defer { open = [:] }
            return Array(open.values)
        }
        fds.forEach { _ = Glibc.close($0) }
    }

    private func descriptor(_ path: String, writing: Bool) -> Int32? {
        let key = Key(path: path, writing: writing)
        if let fd = open.withLock({ $0[key] }) { return fd }
        let fd = Glibc.open(path, (writing ? O_WRONLY : O_RDONLY) | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        let kept = open.withLock { open -> Int32 in
            if let other = open[key] { return other }  // opened meanwhile by another thread
            open[key] = fd
            return fd
        }
        if kept != fd { _ = Glibc.close(fd) }
        return kept
    }

    private func forget(_ path: String, writing: Bool) {
        if let fd = open.withLock({ $0.removeValue(forKey: Key(path: path, writing: writing)) }) { _ = Glibc.close(fd) }
    }
}
