import Foundation
import Logging
import PaddockProtocol
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Which (job, session) a task's session is: an OpenJD step of one job, on this agent.
struct SessionKey: Hashable, Sendable, CustomStringConvertible {
    var job: JobID
    var name: String
    var description: String { "\(job) '\(name)'" }
}

/// A session whose environments are entered: what its later tasks and its exit need.
struct OpenSession: Sendable {
    let key: SessionKey
    let plan: SessionPlan
    /// The session's working directory, shared by its tasks (`$PADDOCK_SESSION_DIR`).
    let directory: String
    /// The environment the first environment was entered with (the entering task's own).
    let base: [String: String]
    /// After each environment entered, in order: what the environments up to it changed in `base`.
    let levels: [SessionVariables]
    /// The task that entered it, whose lease's id, epoch and resources its enter and exit scripts
    /// are launched under (their cgroup, the process ledger).
    let owner: LaunchSpec
    /// The values of the `openjd_redacted_env:` lines its environments printed: kept out of every log.
    let secrets: [[UInt8]]
    /// Where a failed `onExit` is reported (the master's exception list).
    let reporter: ExceptionReporter

    /// What the session's actions run with: every environment's changes.
    var variables: SessionVariables { levels.last ?? SessionVariables() }
}

/// How entering a session's environments went.
enum SessionEntry: Sendable {
    case entered([SessionVariables])
    /// Environment `level` failed (its enter script's status); `entered` were entered before it.
    case failed(level: Int, status: ExitStatus, entered: [SessionVariables])
    /// Stopped meanwhile (cancelled, timed out, the agent leaving) or not launched: `entered` were entered.
    case stopped(entered: [SessionVariables], launchError: LaunchError?)
}

/// Runs a session's enter and exit scripts (`SessionPlan`), each as a process of its own through the
/// agent's `ProcessLauncher` (its cgroup, the task user, the process ledger), like a task's action.
struct SessionScripts: Sendable {
    let launcher: any ProcessLauncher
    let config: AgentConfig
    let clock: any AgentClock
    let logger: Logger
    /// The exit scripts running now: a shutdown that cannot wait longer stops them.
    let running = RunningExits()

    /// Enters the plan's environments in order, each started with what the ones before it left
    /// (`base` changed by them). `attach` hands each process to whoever may stop it (the task's
    /// cancel or timeout) and says false when it was stopped already; `output` takes what they print.
    /// `redactor` learns the values of their `openjd_redacted_env:` lines and keeps them out of `output`.
    func enter(_ plan: SessionPlan, owner: LaunchSpec, base: [String: String], redactor: inout Redactor,
               attach: @Sendable (any RunningProcess) async -> Bool,
               output: @escaping @Sendable (Data) async -> Void) async -> SessionEntry {
        var levels: [SessionVariables] = []
        for (k, environment) in plan.environments.enumerated() {
            let snapshot = owner.cwd + "/.openjd-session-env-\(k)"
            var spec = owner
            spec.argv = ["/bin/sh", "-c", environment.enter, "openjd-enter"]
            spec.environment = (levels.last ?? SessionVariables()).applied(to: base)
                .merging([SessionPlan.snapshotVariable: snapshot]) { _, new in new }
            let process: any RunningProcess
            do throws(LaunchError) {
                process = try launcher.launch(spec)
            } catch {
                return .stopped(entered: levels, launchError: error)
            }
            defer { launcher.ended(owner.task) }
            let reader = Self.relay(process, redactor, output)
            let attached = await attach(process)
            if !attached { await process.terminate(grace: config.killGrace, clock: clock) }
            // Ended, and whatever it left is gone: then its output ends too.
            let status = await process.ending().status
            redactor = await reader.value
            if !attached { return .stopped(entered: levels, launchError: nil) }
            guard status.succeeded else { return .failed(level: k, status: status, entered: levels) }
            // Read against `base`, not against what this level started with: each level's changes are
            // everything the environments changed so far. No snapshot (a plan not made by Paddock's
            // conversion): this level changed nothing, rather than unsetting every variable.
            guard let saved = FileManager.default.contents(atPath: snapshot) else {
                logger.warning("task \(owner.task): environment '\(environment.name)' saved no environment: its variables are not kept")
                levels.append(levels.last ?? SessionVariables())
                continue
            }
            unlink(snapshot)
            levels.append(SessionVariables(from: base, snapshot: saved))
        }
        return .entered(levels)
    }

    /// Runs the `onExit` of each entered environment (`levels`), innermost first, each with the
    /// environment as it was inside its level, whatever the others did. Their output goes to
    /// `output`; a failed one is logged and reported as an exception (type `openjd_on_exit`).
    /// `bound`: what still runs of them after this long is stopped (SIGTERM, SIGKILL a second later),
    /// and no further one starts: an agent that is leaving cannot wait for them.
    func exit(_ plan: SessionPlan, key: SessionKey, owner: LaunchSpec, base: [String: String], levels: [SessionVariables],
              secrets: [[UInt8]], reporter: ExceptionReporter?, bound: Duration? = nil,
              output: @escaping @Sendable (Data) async -> Void) async {
        let deadline = bound.map { clock.now.advanced(by: $0) }
        for k in levels.indices.reversed() {
            if let deadline, clock.now >= deadline { break }
            guard k < plan.environments.count, let script = plan.environments[k].exit, !running.stopped else { continue }
            let name = plan.environments[k].name
            var spec = owner
            spec.argv = ["/bin/sh", "-c", script, "openjd-exit"]
            spec.environment = levels[k].applied(to: base)
            let process: any RunningProcess
            do throws(LaunchError) {
                process = try launcher.launch(spec)
            } catch {
                logger.warning("session \(key): environment '\(name)': onExit cannot be launched: \(error)")
                reporter?.report("openjd_on_exit", "environment '\(name)': onExit cannot be launched: \(error)",
                                 task: owner.task, context: ["session": key.description])
                continue
            }
            let id = running.add(process)
            let reader = Self.relay(process, Redactor(secrets: secrets), output)
            if id == nil { await process.terminate(grace: .seconds(1), clock: clock) }  // launched as the agent stopped waiting
            let watchdog = deadline.map { deadline in
                Task { [clock] in
                    try await clock.sleep(for: deadline - clock.now)
                    await process.terminate(grace: .seconds(1), clock: clock)
                }
            }
            let status = await process.ending().status
            watchdog?.cancel()
            _ = await reader.value  // the output relayed; what the redactor learnt is not needed after an exit
            if let id { running.remove(id) }
            launcher.ended(owner.task)
            if !status.succeeded {
                let message = "openjd: environment '\(name)': onExit failed (\(status))"
                logger.warning("session \(key): \(message)")
                reporter?.report("openjd_on_exit", message, task: owner.task, context: ["session": key.description])
            }
        }
    }

    /// Hands a process's output to `output`, redacted; returns the redactor, which may have learnt values.
    static func relay(_ process: any RunningProcess, _ redactor: Redactor,
                      _ output: @escaping @Sendable (Data) async -> Void) -> Task<Redactor, Never> {
        Task {
            var redactor = redactor
            for await chunk in process.output {
                let visible = redactor.feed(chunk)
                if !visible.isEmpty { await output(visible) }
            }
            let last = redactor.flush()
            if !last.isEmpty { await output(last) }
            return redactor
        }
    }

    /// Output of a session's exit, line by line into the agent's log (a line cut between two chunks
    /// is joined first; what is left without a newline at the end is not logged).
    func logLines(_ key: SessionKey) -> @Sendable (Data) async -> Void {
        let logger = logger
        let pending = Mutex(Data())
        return { chunk in
            let lines: [Data] = pending.withLock { buffer in
                buffer.append(chunk)
                guard let last = buffer.lastIndex(of: UInt8(ascii: "\n")) else {
                    guard buffer.count > 65_536 else { return [] }
                    defer { buffer = Data() }  // a line without end is not kept whole: it is logged as it is
                    return [buffer]
                }
                let complete = buffer[buffer.startIndex..<last]
                buffer = Data(buffer[(last + 1)...])
                return complete.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { Data($0) }
            }
            for line in lines {
                logger.info("session \(key) onExit: \(String(decoding: line.prefix(4096), as: UTF8.self))")
            }
        }
    }
}

/// The exit scripts running now, to stop them when the agent cannot wait for them any longer.
final class RunningExits: Sendable {
    private let processes = Mutex<(next: Int, byID: [Int: any RunningProcess], stopped: Bool)>((0, [:], false))

    /// Set when the agent stops waiting for exits: no further `onExit` is started.
    var stopped: Bool { processes.withLock { $0.stopped } }

    /// No further `onExit` is started; returns those that run, to be stopped.
    func stop() -> [any RunningProcess] {
        processes.withLock { state in
            state.stopped = true
            return Array(state.byID.values)
        }
    }

    /// Keeps `process` to be stopped; nil when the agent stopped waiting meanwhile: the caller stops it.
    func add(_ process: any RunningProcess) -> Int? {
        processes.withLock { state in
            guard !state.stopped else { return nil }
            state.next += 1
            state.byID[state.next] = process
            return state.next
        }
    }

    func remove(_ id: Int) { processes.withLock { _ = $0.byID.removeValue(forKey: id) } }
}
