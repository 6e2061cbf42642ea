import Foundation
@testable import PaddockAgent
import PaddockProtocol
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Launches `FakeProcess`es: the test sees each (`launched.take`) and ends it when it wants.
final class FakeLauncher: ProcessLauncher {
    let launched = Mailbox<FakeProcess>()
    private struct State {
        var nextPID: pid_t = 900_000
        var failures: [LaunchError] = []
        var ended: [TaskID] = []
        var closed = false
        /// Whether new processes end on SIGTERM (else only on SIGKILL, or when the test ends them).
        var exitOnTerm = true
    }
    private let state = Mutex(State())

    init(exitOnTerm: Bool = true) { state.withLock { $0.exitOnTerm = exitOnTerm } }

    /// The next launch fails with `error`.
    func failNext(_ error: LaunchError) { state.withLock { $0.failures.append(error) } }

    var ended: [TaskID] { state.withLock { $0.ended } }
    var closed: Bool { state.withLock { $0.closed } }

    func open(slots: Int) -> String? { nil }

    func launch(_ spec: LaunchSpec) throws(LaunchError) -> any RunningProcess {
        let made = state.withLock { state -> Result<FakeProcess, LaunchError> in
            if !state.failures.isEmpty { return .failure(state.failures.removeFirst()) }
            state.nextPID += 1
            return .success(FakeProcess(spec: spec, pid: state.nextPID, exitOnTerm: state.exitOnTerm))
        }
        let process = try made.get()
        launched.put(process)
        return process
    }

    func ended(_ task: TaskID) { state.withLock { $0.ended.append(task) } }
    func close() { state.withLock { $0.closed = true } }
}

/// A run's process that does what the test says: prints, exits, and takes signals as a task would
/// (it exits on SIGTERM when told to, always on SIGKILL), recording them.
final class FakeProcess: RunningProcess {
    let spec: LaunchSpec
    let pid: pid_t
    let output: AsyncStream<Data>
    /// Every signal sent to it while it ran, in order.
    let signals = Mailbox<Int32>()
    private let sink: AsyncStream<Data>.Continuation
    private struct State {
        var ending: ProcessEnding?
        var waiters: [CheckedContinuation<ProcessEnding, Never>] = []
        var received: [Int32] = []
        var exitOnTerm: Bool
    }
    private let state: Mutex<State>
    static let usage = TaskUsage(cpuSeconds: 1.5, rss: 0, peakRSS: 64 << 20, processes: 0)

    init(spec: LaunchSpec, pid: pid_t, exitOnTerm: Bool) {
        self.spec = spec
        self.pid = pid
        state = Mutex(State(exitOnTerm: exitOnTerm))
        (output, sink) = AsyncStream.makeStream(of: Data.self)
    }

    var received: [Int32] { state.withLock { $0.received } }
    var hasEnded: Bool { state.withLock { $0.ending != nil } }

    func print(_ text: String) { sink.yield(Data(text.utf8)) }

    /// The process ends with `status`; its output closes.
    /// `leftNothing`: its cgroup was empty at its end (its directory may serve a later run).
    func exit(_ status: PaddockAgent.ExitStatus, oomKilled: Bool = false, leftNothing: Bool = false) {
        let ending = ProcessEnding(status: status, usage: Self.usage, oomKilled: oomKilled, leftNothing: leftNothing)
        let waiters = state.withLock { state -> [CheckedContinuation<ProcessEnding, Never>] in
            guard state.ending == nil else { return [] }
            state.ending = ending
            defer { state.waiters = [] }
            return state.waiters
        }
        sink.finish()
        waiters.forEach { $0.resume(returning: ending) }
    }

    func ending() async -> ProcessEnding {
        await withCheckedContinuation { continuation in
            let ended = state.withLock { state -> ProcessEnding? in
                if let ending = state.ending { return ending }
                state.waiters.append(continuation)
                return nil
            }
            if let ended { continuation.resume(returning: ended) }
        }
    }

    func signalGroup(_ signal: Int32) {
        let exits = state.withLock { state -> Bool? in
            guard state.ending == nil else { return nil }
            state.received.append(signal)
            return signal == SIGKILL || (signal == SIGTERM && state.exitOnTerm)
        }
        guard let exits else { return }
        signals.put(signal)
        if exits { exit(.signaled(signal)) }
    }

    func killGroup() { signalGroup(SIGKILL) }

    var measuredGroup: pid_t? { nil }
    func cgroupUsage() -> TaskUsage? { nil }
    var memoryLimit: Int64? { nil }
}
