import Foundation
#if canImport(Glibc)
import Glibc
#endif
import CSpawn
import PaddockProtocol

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

/// A task's process: launched with posix_spawn as the leader of its own
/// process group (so a cancel reaches its grandchildren too), with an explicit
/// argv, environment and cwd, stdin from /dev/null, stdout and stderr merged
/// into one pipe as a terminal would show them. Never through a shell.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    /// The merged output, chunk by chunk, until every holder of the pipe has closed it.
    public let output: AsyncStream<Data>
    private let exit: Task<(ExitStatus, TaskUsage), Never>

    public static func launch(argv: [String], environment: [String: String], cwd: String) throws(LaunchError) -> ChildProcess {
        guard let program = argv.first, !program.isEmpty else { throw LaunchError(description: "empty command") }
        var fds: [Int32] = [-1, -1]
        guard paddock_pipe_cloexec(&fds) == 0 else { throw LaunchError(description: "pipe: \(String(cString: strerror(errno)))") }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        paddock_spawn_addclosefrom(&actions, 3)
        paddock_spawn_addchdir(&actions, cwd)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group; default signal dispositions and an empty mask,
        // whatever the agent itself ignores or blocks (it handles SIGTERM).
        var all = sigset_t(), none = sigset_t()
        sigfillset(&all)
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var pid: pid_t = 0
        // posix_spawnp looks the program up in the agent's own PATH.
        let rc = posix_spawnp(&pid, program, &actions, &attributes, cArgs, cEnv)
        close(fds[1])
        guard rc == 0 else {
            close(fds[0])
            let reason = rc == ENOENT ? "no such executable or directory: \(program) (cwd \(cwd))"
                : "cannot launch \(program): \(String(cString: strerror(rc)))"
            throw LaunchError(description: reason)
        }
        return ChildProcess(pid: pid, readFD: fds[0])
    }

    private init(pid: pid_t, readFD: Int32) {
        self.pid = pid
        let (stream, continuation) = AsyncStream.makeStream(of: Data.self)
        output = stream
        Thread.detachNewThread {
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(readFD, $0.baseAddress, $0.count) }
                if n > 0 {
                    continuation.yield(Data(buffer[0..<n]))
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            close(readFD)
            continuation.finish()
        }
        exit = Task {
            await withCheckedContinuation { (done: CheckedContinuation<(ExitStatus, TaskUsage), Never>) in
                Thread.detachNewThread {
                    var status: Int32 = 0
                    var usage = rusage()
                    // wait4 also tells what the process and the children it waited for used.
                    while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
                    let cpu = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
                        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
                    let peak = Int64(usage.ru_maxrss) * 1024  // kilobytes on Linux
                    let spent = TaskUsage(cpuSeconds: cpu, rss: 0, peakRSS: peak, processes: 0)
                    // What the task left behind in its group dies with it: a farm task owns nothing after it ends,
                    // and the output pipe closes only when every holder is gone.
                    kill(-pid, SIGKILL)
                    let signal = status & 0x7f
                    done.resume(returning: (signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal), spent))
                }
            }
        }
    }

    public func waitForExit() async -> ExitStatus { await exit.value.0 }

    /// What the process (and the children it waited for) used, known once it has exited.
    public func finalUsage() async -> TaskUsage { await exit.value.1 }

    /// Sends `signal` to the whole process group.
    public func signalGroup(_ signal: Int32) {
        kill(-pid, signal)
    }

    /// SIGTERM to the group, SIGKILL after `grace` if the leader still runs.
    public func terminate(grace: Duration) async {
        signalGroup(SIGTERM)
        let exit = self.exit
        let killer = Task {
            try await Task.sleep(for: grace)
            kill(-pid, SIGKILL)
        }
        _ = await exit.value
        killer.cancel()
    }
}
