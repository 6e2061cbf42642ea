import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A run's scratch directory. Made and removed with plain system calls: most runs leave it empty,
/// and FileManager's walk of an empty directory costs more than a short task's own run.
enum WorkDirectory {
    static func make(_ path: String) {
        if mkdir(path, 0o755) != 0 && errno == ENOENT {
            try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
    }

    /// Removes the directory and whatever the run left in it.
    static func remove(_ path: String) {
        if rmdir(path) != 0 && errno != ENOENT {
            try? FileManager.default.removeItem(atPath: path)
        }
    }
}
