import Dispatch
import Foundation
import Synchronization

/// Threads for calls that block for as long as a task runs (reading its output pipe, waiting for its
/// exit), kept for the next runs instead of one new thread per call: starting and ending two threads
/// per run was a tenth of the agent's CPU on short tasks. Elastic: a call that finds no idle thread
/// gets a new one, so a blocked call never waits behind another (a task's output must be drained
/// while it runs, or the task blocks on its pipe and never exits); threads idle past `idleLimit`
/// end, and at most `keepIdle` stay idle at once.
final class BlockingThreads: Sendable {
    static let shared = BlockingThreads()

    private struct State {
        var work: [@Sendable () -> Void] = []
        /// Threads waiting on `wake` that no signal is meant for yet.
        var idle = 0
        /// Threads alive (for tests).
        var live = 0
    }

    private let state = Mutex(State())
    /// One signal per call handed to an idle thread.
    private let wake = DispatchSemaphore(value: 0)
    let keepIdle: Int
    let idleLimit: DispatchTimeInterval

    init(keepIdle: Int = 64, idleLimit: DispatchTimeInterval = .seconds(30)) {
        self.keepIdle = keepIdle
        self.idleLimit = idleLimit
    }

    /// Runs `body` on a thread of its own for as long as it takes.
    func run(_ body: @escaping @Sendable () -> Void) {
        let handToIdle = state.withLock { state in
            state.work.append(body)
            guard state.idle > 0 else {
                state.live += 1
                return false
            }
            state.idle -= 1
            return true
        }
        if handToIdle {
            wake.signal()
        } else {
            Thread.detachNewThread { [self] in serve() }
        }
    }

    /// Idle threads now, and threads alive (for tests).
    var idleCount: Int { state.withLock { $0.idle } }
    var liveCount: Int { state.withLock { $0.live } }

    /// Takes one call (each signal and each new thread stands for exactly one queued call), then
    /// waits for the next while fewer than `keepIdle` wait.
    private func serve() {
        while true {
            let body = state.withLock { $0.work.removeFirst() }
            body()
            let stays = state.withLock { state in
                guard state.idle < keepIdle else {
                    state.live -= 1
                    return false
                }
                state.idle += 1
                return true
            }
            guard stays else { return }
            if wake.wait(timeout: .now() + idleLimit) == .timedOut {
                // Leave unless every idle thread, this one included, has a signal on its way: then one
                // of them is this thread's, and a call waits for it.
                let leaves = state.withLock { state in
                    guard state.idle > 0 else { return false }
                    state.idle -= 1
                    state.live -= 1
                    return true
                }
                if leaves { return }
                wake.wait()
            }
        }
    }
}
