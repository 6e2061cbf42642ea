import Foundation
import PaddockProtocol
#if canImport(Glibc)
import Glibc
#endif

/// What a run's process is launched with: the lease's command, mapped (`TaskRunner.mappedLaunch`).
struct LaunchSpec: Sendable {
    var task: TaskID
    var epoch: LeaseEpoch
    var resources: ResourceVector
    var argv: [String]
    var environment: [String: String]
    var cwd: String
    var user: TaskUser?
}

/// Starts the processes of the agent's runs. The real one, `ContainedLauncher`, launches them in
/// cgroups (docs/ARCHITECTURE.md §11); the agent's tests use processes they end themselves.
protocol ProcessLauncher: Sendable {
    /// Gets ready to run up to `slots` runs at once; what it decided, for the agent's log.
    func open(slots: Int) -> String?
    func launch(_ spec: LaunchSpec) throws(LaunchError) -> any RunningProcess
    /// The run of `task` is over: its process and whatever it started are gone.
    func ended(_ task: TaskID)
    /// No more runs: what the launcher kept for them goes.
    func close()
}

/// How a run's process ended, with what it used.
struct ProcessEnding: Sendable {
    var status: ExitStatus
    var usage: TaskUsage
    /// The kernel's OOM killer killed a process of the run (it went past its memory limit).
    var oomKilled: Bool
    /// The run's cgroup was found empty after its end: nothing the run started is left (a process
    /// group alone cannot say so: a `setsid` daemon leaves it). Only then is its directory reused.
    var leftNothing: Bool = false
}

/// A run's process, as the agent's services see it (the real one: `ChildProcess`).
protocol RunningProcess: Sendable {
    var pid: pid_t { get }
    /// The merged output, chunk by chunk, until every holder of the pipe has closed it.
    var output: AsyncStream<Data> { get }
    /// How the run ended, once its process has exited and whatever it left is gone.
    func ending() async -> ProcessEnding
    /// Sends `signal` to everything of the run, until its leader has been reaped.
    func signalGroup(_ signal: Int32)
    /// SIGKILL to everything of the run, until its leader has been reaped.
    func killGroup()
    /// The process group a heartbeat measures in /proc; nil when the run's cgroup counts what it uses.
    var measuredGroup: pid_t? { get }
    /// What the run's cgroup has counted so far (nil without a cgroup).
    func cgroupUsage() -> TaskUsage?
    /// The memory limit of the run's cgroup, if it has one.
    var memoryLimit: Int64? { get }
}

extension RunningProcess {
    /// SIGTERM to the run, SIGKILL after `grace` on `clock` if it has not ended by then; returns once it has.
    func terminate(grace: Duration, clock: any AgentClock) async {
        signalGroup(SIGTERM)
        let killer = Task { [self] in
            try await clock.sleep(for: grace)
            killGroup()
        }
        _ = await ending()
        killer.cancel()
    }
}

/// Launches runs in their cgroups (`Containment`), with warm children where joining a cgroup is slow,
/// and keeps each in the `ProcessLedger` until it ends (an agent restarted after a crash kills what
/// its runs left).
struct ContainedLauncher: ProcessLauncher {
    let containment: Containment
    let ledger: ProcessLedger

    func open(slots: Int) -> String? {
        let policy = containment.policy
        return containment.keepWarm(min(slots, policy.warmChildren ?? ContainmentPolicy.autoWarmChildren),
                                    onlyIfJoiningIsSlow: policy.warmChildren == nil)
    }

    func launch(_ spec: LaunchSpec) throws(LaunchError) -> any RunningProcess {
        let run = try containment.prepareRun(task: spec.task, epoch: spec.epoch, resources: spec.resources)
        // The child that waited in this run's cgroup is used: another starts waiting for the next.
        defer { containment.replenish() }
        let process: ChildProcess
        do throws(LaunchError) {
            process = try ChildProcess.launch(argv: spec.argv, environment: spec.environment, cwd: spec.cwd,
                                              cgroup: run.cgroup, warm: run.warm, user: spec.user)
        } catch {
            run.cgroup?.remove(waiting: .seconds(2))
            throw error
        }
        ledger.record(task: spec.task, processGroup: process.pid, cgroup: process.cgroup?.dirs ?? [])
        return process
    }

    func ended(_ task: TaskID) { ledger.forget(task: task) }

    func close() { containment.close() }
}
