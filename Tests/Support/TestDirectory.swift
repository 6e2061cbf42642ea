import Foundation
import Synchronization

/// The temporary directories tests make (SQLite files, logs, a PostgreSQL cluster): removed when
/// their owner goes away or when the test process exits, unless PADDOCK_KEEP_TEST_DIRS=1 (to read
/// a failed test's logs). A full run left some 4 GB in /tmp before they were.
public enum TestDirectory {
    public static var keep: Bool { ProcessInfo.processInfo.environment["PADDOCK_KEEP_TEST_DIRS"] == "1" }

    /// A fresh directory `NSTemporaryDirectory()/prefix-XXXXXXXX`, for an owner that removes it.
    public static func make(_ prefix: String) throws -> String {
        let dir = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A fresh directory removed when the test process exits: for one that outlives whatever made
    /// it (a store used after its fixture is gone).
    public static func makeUntilExit(_ prefix: String) throws -> String {
        let dir = try make(prefix)
        let first = leftAtExit.withLock { state -> Bool in
            state.dirs.append(dir)
            defer { state.hooked = true }
            return !state.hooked
        }
        if first { atexit { leftAtExit.withLock { $0.dirs }.forEach(TestDirectory.remove) } }
        return dir
    }

    public static func remove(_ dir: String) {
        if !keep { try? FileManager.default.removeItem(atPath: dir) }
    }
}

/// What the exit hook removes (a C hook captures nothing: it reads this).
private let leftAtExit = Mutex<(hooked: Bool, dirs: [String])>((false, []))
