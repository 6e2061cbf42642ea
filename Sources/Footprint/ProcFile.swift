#if canImport(Glibc)
import Glibc
#endif

/// A file of /proc, read whole. Its size says 0, so it is read until a read returns nothing. The one
/// reader of the footprint's `smaps` and `statm` and of the agent's host and process probes.
public enum ProcFile {
    /// The file's bytes; nil when it cannot be opened or a read fails (a process gone meanwhile).
    public static func read(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return nil }
            if n == 0 { return bytes }
            bytes.append(contentsOf: buffer[0..<n])
        }
    }
}
