import Foundation
#if canImport(Glibc)
import Glibc
#endif
import CSpawn
import PaddockProtocol
import Synchronization

/// How a child process ended.
public enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    public var succeeded: Bool { self == .exited(0) }
    /// The shell's convention: 128 + signal for a process killed by one.
    public var code: Int { switch self { case .exited(let c): Int(c); case .signaled(let s): 128 + Int(s) } }
    public var description: String {
        switch self {
        case .exited(let code): "exit code \(code)"
        case .signaled(let signal): "killed by signal \(signal)"
        }
    }
}

public struct LaunchError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// A task's process: launched (vfork + exec, in its cgroup where the agent has them) as the leader of
/// its own process group (so a cancel reaches its grandchildren too), with an explicit
/// argv, environment and cwd, stdin from /dev/null, stdout and stderr merged
/// into one pipe as a terminal would show them. Never through a shell.
public final class ChildProcess: Sendable, RunningProcess {
    public let pid: pid_t
    /// The merged output, chunk by chunk, until every holder of the pipe has closed it.
    public let output: AsyncStream<Data>
    /// The run's cgroup, where the agent contains its tasks: nil where it cannot.
    let cgroup: TaskCgroup?
    private let exit: Task<ProcessEnding, Never>
    /// Whether the leader has been reaped: its pid (its process group's id) may then be another
    /// process's, so the group is no longer signalled (a stop repeated late must not hit a stranger).
    private let reaped: Reaped

    /// Launches `argv` (looked up in the agent's PATH) in `cgroup` when one is given: the child joins
    /// it before it execs, so nothing the task starts can be outside it. With `warm`, a child already
    /// waiting in `cgroup` runs it (see `WarmChild`).
    static func launch(argv: [String], environment: [String: String], cwd: String,
                       cgroup: TaskCgroup? = nil, warm: WarmChild? = nil, user: TaskUser? = nil) throws(LaunchError) -> ChildProcess {
        guard let program = argv.first, !program.isEmpty else {
            warm?.dismiss()
            throw LaunchError(description: "empty command")
        }
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var pid: pid_t = 0
        var stage: Int32 = 0
        let rc: Int32
        let readFD: Int32
        let groups = user?.groups ?? []
        /// The task's user for the launch child (uid -1: the agent's own), valid while `groups` is.
        func identity(_ groupBuffer: UnsafeBufferPointer<gid_t>) -> paddock_user {
            paddock_user(uid: user.map { Int32(bitPattern: $0.uid) } ?? -1, gid: user.map { Int32(bitPattern: $0.gid) } ?? -1,
                         groups: groupBuffer.baseAddress, ngroups: Int32(groupBuffer.count))
        }
        let spawned: (rc: Int32, readFD: Int32)? = groups.withUnsafeBufferPointer { groupBuffer in
            var identity = identity(groupBuffer)
            guard let handle = warm?.take() else { return nil }
            let fd = paddock_warm_output_fd(handle)
            return (paddock_warm_launch(handle, program, cArgs, cEnv, cwd, &identity, &pid, &stage), fd)
        }
        if let spawned {
            rc = spawned.rc
            readFD = spawned.readFD
        } else {
            var fds: [Int32] = [-1, -1]
            guard paddock_pipe_cloexec(&fds) == 0 else { throw LaunchError(description: "pipe: \(String(cString: strerror(errno)))") }
            let cgroupFDs: [Int32]
            do {
                cgroupFDs = try cgroup?.openProcsFiles() ?? []
            } catch {
                close(fds[0])
                close(fds[1])
                throw error
            }
            defer { cgroupFDs.forEach { _ = close($0) } }
            rc = cgroupFDs.withUnsafeBufferPointer { cgroupBuffer in
                groups.withUnsafeBufferPointer { groupBuffer in
                    var identity = identity(groupBuffer)
                    return paddock_spawn(&pid, program, cArgs, cEnv, cwd, fds[1], cgroupBuffer.baseAddress, Int32(cgroupBuffer.count),
                                         &identity, &stage)
                }
            }
            close(fds[1])
            if rc != 0 { close(fds[0]) }
            readFD = fds[0]
        }
        guard rc == 0 else {
            let reason = switch stage {
            case 1: "cannot join the task's cgroup: \(String(cString: strerror(rc)))"
            case 4: "cannot change to the task's directory \(cwd): \(String(cString: strerror(rc)))"
            case 5 where rc == ENOENT: "no such executable: \(program)"
            case 7: "cannot run as user \(user?.name ?? "?"): \(String(cString: strerror(rc)))"
            default: "cannot launch \(program): \(String(cString: strerror(rc)))"
            }
            throw LaunchError(description: reason)
        }
        return ChildProcess(pid: pid, readFD: readFD, cgroup: cgroup)
    }

    private init(pid: pid_t, readFD: Int32, cgroup: TaskCgroup?) {
        let reaped = Reaped()
        self.reaped = reaped
        self.pid = pid
        self.cgroup = cgroup
        let (stream, continuation) = AsyncStream.makeStream(of: Data.self)
        output = stream
        let watch = OutputAndExit(pid: pid, readFD: readFD, output: continuation, reaped: reaped, cgroup: cgroup)
        // One blocking thread polls the output pipe and a pidfd: a run's end (its exit and its pipe's
        // end-of-file come together for most runs) wakes one thread, not a reader and a waiter each.
        // Where the kernel has no pidfd (before 5.3), a reader thread and a waiter thread.
        let pidfd = paddock_pidfd_open(pid)
        if pidfd < 0 { BlockingThreads.shared.run { watch.readToEnd() } }
        exit = Task {
            await withCheckedContinuation { (done: CheckedContinuation<ProcessEnding, Never>) in
                BlockingThreads.shared.run {
                    if pidfd >= 0 {
                        watch.poll(pidfd: pidfd) { done.resume(returning: $0) }
                    } else {
                        done.resume(returning: watch.waitAndReap())
                    }
                }
            }
        }
    }

    public func waitForExit() async -> ExitStatus { await exit.value.status }

    /// How the run ended and what it used (from its cgroup's counters when it had one), once its
    /// process has exited and its cgroup is emptied.
    func ending() async -> ProcessEnding { await exit.value }

    var measuredGroup: pid_t? { cgroup == nil ? pid : nil }
    func cgroupUsage() -> TaskUsage? { cgroup?.usage() }
    var memoryLimit: Int64? { cgroup?.memoryLimit }

    /// Sends `signal` to the whole process group, and to every process of the cgroup (those that made
    /// a process group or session of their own included).
    ///
    /// Only while the leader is not reaped: after that its pid may be a stranger's, and its cgroup
    /// may already serve the next run (emptied cgroups are reused); what the run left behind is
    /// killed by the reaper itself.
    public func signalGroup(_ signal: Int32) {
        reaped.whileAlive {
            _ = kill(-pid, signal)
            cgroup?.signalAll(signal)
        }
    }

    /// SIGKILL to the group and everything in the cgroup (`cgroup.kill` where there is one), while
    /// the leader is not reaped.
    func killGroup() {
        reaped.whileAlive {
            _ = kill(-pid, SIGKILL)
            cgroup?.killAll()
        }
    }

    /// SIGTERM to the group, SIGKILL after `grace` if the leader still runs.
    public func terminate(grace: Duration) async { await terminate(grace: grace, clock: ContinuousClock()) }
}

/// Whether a child has been reaped, and a lock that keeps a signal to its group from crossing the reaping.
final class Reaped: Sendable {
    private let state = Mutex(false)

    /// Runs `body` (a signal to the group) only while the leader is not reaped.
    func whileAlive(_ body: () -> Void) {
        state.withLock { gone in if !gone { body() } }
    }

    /// Reaps the leader (`body`, its wait4) and marks it reaped, under the lock.
    func reap(_ body: () -> Void) {
        state.withLock { gone in
            body()
            gone = true
        }
    }
}

/// A run's output pipe and its exit, watched from a blocking thread.
private struct OutputAndExit: Sendable {
    let pid: pid_t
    let readFD: Int32
    let output: AsyncStream<Data>.Continuation
    let reaped: Reaped
    let cgroup: TaskCgroup?

    /// Reads one chunk of the pipe into the stream; false at its end (then closed and finished).
    func readChunk(_ buffer: inout [UInt8]) -> Bool {
        while true {
            let n = buffer.withUnsafeMutableBytes { read(readFD, $0.baseAddress, $0.count) }
            if n > 0 {
                output.yield(Data(buffer[0..<n]))
                return true
            }
            if n < 0 && errno == EINTR { continue }
            close(readFD)
            output.finish()
            return false
        }
    }

    /// The whole output, blocking on each read.
    func readToEnd() {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while readChunk(&buffer) {}
    }

    /// Polls the pipe and `pidfd` until both have ended; `ended` is called once, when the run has
    /// exited and been reaped (its output may still come: what it left holding the pipe is killed then).
    func poll(pidfd: Int32, ended: (ProcessEnding) -> Void) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var open = true
        var exited = false
        var fds = [pollfd(fd: readFD, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)]
        while open || !exited {
            fds[0].fd = open ? readFD : -1  // a negative descriptor is left out
            fds[1].fd = exited ? -1 : pidfd
            fds[0].revents = 0
            fds[1].revents = 0
            if Glibc.poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                break  // not expected (ENOMEM): what is left is done blocking, below
            }
            if open && fds[0].revents != 0 { open = readChunk(&buffer) }
            if !exited && fds[1].revents != 0 {
                exited = true
                close(pidfd)  // not held while a process the run left keeps the pipe open
                ended(waitAndReap())
            }
        }
        if !exited {
            close(pidfd)
            // The pipe read on a thread of its own meanwhile: a run blocked writing into a full pipe
            // would never exit.
            if open {
                let rest = self
                BlockingThreads.shared.run { rest.readToEnd() }
                open = false
            }
            ended(waitAndReap())
        }
        if open { readToEnd() }
    }

    /// Waits for the leader's exit, reaps it, and kills and counts what the run left.
    func waitAndReap() -> ProcessEnding {
        var status: Int32 = 0
        var usage = rusage()
        // Waited for without reaping first; reaped under the lock that signals take.
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
        // wait4 also tells what the process and the children it waited for used.
        // What the task left in its process group dies with it, before the leader is reaped: until
        // then its zombie holds the group's id, which no other process can then be given.
        reaped.reap {
            kill(-pid, SIGKILL)
            while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        }
        let cpu = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        let peak = Int64(usage.ru_maxrss) * 1024  // kilobytes on Linux
        var spent = TaskUsage(cpuSeconds: cpu, rss: 0, peakRSS: peak, processes: 0)
        // What the task left behind dies with it: a farm task owns nothing after it ends, and
        // the output pipe closes only when every holder is gone. Its cgroup holds everything it
        // started, setsid'd daemons included; without one, its process group (killed above) is
        // what is known.
        var oom = false
        var leftNothing = false
        if let cgroup {
            let left = cgroup.killAll()
            oom = cgroup.oomKilled()
            if let counted = cgroup.usage() {
                // The cgroup's peak alone: a vforked child's ru_maxrss counts the agent's own
                // memory, which it shared until its exec.
                spent = TaskUsage(cpuSeconds: max(counted.cpuSeconds, cpu), rss: 0,
                                  peakRSS: counted.peakRSS > 0 ? counted.peakRSS : peak, processes: 0)
            }
            leftNothing = cgroup.recycle(waiting: .seconds(2), knownEmpty: left == 0)
        }
        let signal = status & 0x7f
        return ProcessEnding(status: signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal),
                             usage: spent, oomKilled: oom, leftNothing: leftNothing)
    }
}
