import CSpawn
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A child process already waiting in the cgroup of a coming run (cspawn.c's warm launch).
///
/// Joining a cgroup takes the kernel's global migration lock for writing, and the first writer after
/// a quiet spell waits out an RCU grace period (14 ms on the benchmark host, more than a short task's
/// whole run): a warm child pays that before its task is known, so a launch only hands it the
/// command and lets it exec. The agent keeps one per slot, up to `--warm-children` (4): runs end
/// one at a time, and a child used is replaced at once (`Containment.keepWarm`).
/// Until its exec it shares the agent's memory, so it shows as a second `paddock agent` named
/// `paddock-warm`.
final class WarmChild: Sendable {
    /// Its cgroup, with no limits of a run's until a run takes it.
    let cgroup: TaskCgroup
    /// The C side's `paddock_warm *` as a bit pattern, until a launch or a dismissal consumes it.
    private let handle: Mutex<UInt>

    init?(cgroup: TaskCgroup) {
        let paths = cgroup.dirs.map { strdup($0 + "/cgroup.procs") }
        defer { paths.forEach { free($0) } }
        var error: Int32 = 0
        let constPaths: [UnsafePointer<CChar>?] = paths.map { $0.map { UnsafePointer($0) } }
        let started = constPaths.withUnsafeBufferPointer { buffer in
            paddock_warm_start(buffer.baseAddress, Int32(buffer.count), &error)
        }
        guard let started else { return nil }
        self.cgroup = cgroup
        handle = Mutex(UInt(bitPattern: Int(bitPattern: UnsafeMutableRawPointer(started))))
    }

    /// The handle, once: whoever gets it launches or dismisses the child.
    func take() -> OpaquePointer? {
        let bits = handle.withLock { bits in
            defer { bits = 0 }
            return bits
        }
        return OpaquePointer(bitPattern: UInt(bits))
    }

    /// Waits until the child has joined its cgroup; false if it could not.
    func waitReady() -> Bool {
        handle.withLock { bits in
            guard let pointer = OpaquePointer(bitPattern: bits) else { return false }
            return paddock_warm_wait_ready(pointer) == 0
        }
    }

    /// Ends the child unused (it exits at once, or as soon as it has joined its cgroup).
    func dismiss() {
        if let pointer = take() { paddock_warm_dismiss(pointer) }
    }

    deinit { dismiss() }
}

/// The warm children waiting for runs, and how many the agent wants waiting.
final class WarmPool: Sendable {
    private struct State {
        var waiting: [WarmChild] = []
        var starting = 0
        var target = 0
        var closed = false
    }
    private let state = Mutex(State())

    func setTarget(_ count: Int) { state.withLock { $0.target = max(0, count) } }

    func take() -> WarmChild? { state.withLock { $0.waiting.isEmpty ? nil : $0.waiting.removeFirst() } }

    /// The cgroups the waiting children are in.
    func waitingCgroups() -> [TaskCgroup] { state.withLock { $0.waiting.map(\.cgroup) } }

    /// How many children to start now; each start ends with `add` (its child, or nil if it failed).
    func reserveStarts() -> Int {
        state.withLock { state in
            guard !state.closed else { return 0 }
            let count = max(0, state.target - state.waiting.count - state.starting)
            state.starting += count
            return count
        }
    }

    /// Takes in a started child; false once closed (the caller dismisses it).
    func add(_ child: WarmChild?) -> Bool {
        state.withLock { state in
            state.starting -= 1
            guard let child else { return true }
            guard !state.closed else { return false }
            state.waiting.append(child)
            return true
        }
    }

    /// Takes in a child started outside `reserveStarts` (the one that measured the join); false once
    /// closed (the caller dismisses it).
    func adopt(_ child: WarmChild) -> Bool {
        state.withLock { state in
            guard !state.closed else { return false }
            state.waiting.append(child)
            return true
        }
    }

    /// No more children: those waiting are handed back to be dismissed.
    func close() -> [WarmChild] {
        state.withLock { state in
            state.closed = true
            defer { state.waiting = [] }
            return state.waiting
        }
    }
}
