import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A cgroup's control files, each opened once and then read and written in place (read again from
/// offset 0, written with `pwrite` there: a control file answers its current value to every read
/// from the start).
/// A reused cgroup serves many runs, and each run read and wrote about ten of its files: opening
/// each by its long path, every time, was a tenth of the agent's CPU on short tasks.
///
/// Each read and write happens under the table's lock: a heartbeat's usage sample and the run's end
/// (which closes the files when the cgroup is removed) may meet, and a descriptor closed between
/// its lookup and its use could by then be another file's. Control files answer at once.
final class CgroupFiles: Sendable {
    private struct Key: Hashable {
        var path: String
        var writing: Bool
    }
    private let descriptors = Mutex<[Key: Int32]>([:])

    deinit { closeAll() }

    /// The file's whole content, or nil when it cannot be read.
    func read(_ path: String) -> String? {
        descriptors.withLock { descriptors -> String? in
            guard let fd = Self.descriptor(Key(path: path, writing: false), in: &descriptors) else { return nil }
            // From the start: a control file answers its current value to each read from there.
            let (data, failed) = Self.readFromStart(fd)
            if failed {
                Self.forget(Key(path: path, writing: false), in: &descriptors)
                return nil
            }
            return String(decoding: data, as: UTF8.self)
        }
    }

    func write(_ value: String, to path: String) throws(LaunchError) {
        let failure = descriptors.withLock { descriptors -> String? in
            let key = Key(path: path, writing: true)
            guard let fd = Self.descriptor(key, in: &descriptors) else {
                return "cannot open \(path): \(String(cString: strerror(errno)))"
            }
            guard value.withCString({ pwrite(fd, $0, strlen($0), 0) }) >= 0 else {
                let reason = String(cString: strerror(errno))
                Self.forget(key, in: &descriptors)
                return "cannot write \(value) to \(path): \(reason)"
            }
            return nil
        }
        if let failure { throw LaunchError(description: failure) }
    }

    /// Closes every file (before the cgroup's directories are removed).
    func closeAll() {
        descriptors.withLock { descriptors in
            descriptors.values.forEach { _ = close($0) }
            descriptors = [:]
        }
    }

    /// The file's content read with `pread` from offset 0: one system call for a control file, where
    /// a seek and two reads (the second to see the end) were three, at every run's end. A control
    /// file is a kernel `seq_file`, which fills the buffer until its end: a read shorter than the
    /// buffer has it all.
    static func readFromStart(_ fd: Int32) -> (data: Data, failed: Bool) {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(data.count)) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return (data, true) }
            data.append(contentsOf: buffer[0..<n])
            if n < buffer.count { return (data, false) }
        }
    }

    private static func descriptor(_ key: Key, in descriptors: inout [Key: Int32]) -> Int32? {
        if let fd = descriptors[key] { return fd }
        let fd = open(key.path, (key.writing ? O_WRONLY : O_RDONLY) | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        descriptors[key] = fd
        return fd
    }

    private static func forget(_ key: Key, in descriptors: inout [Key: Int32]) {
        if let fd = descriptors.removeValue(forKey: key) { _ = close(fd) }
    }
}
