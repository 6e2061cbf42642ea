import Foundation
import Logging
import PaddockClient
import PaddockProtocol

/// Runs one leased task from start report to finish report.
struct TaskRunner: Sendable {
    let lease: TaskLease
    let session: AgentSession.Enrolled
    let workload: Workload
    let config: AgentConfig
    let logger: Logger

    static let shutdownReason = "agent shutting down"

    var client: MasterClient { session.client }

    func run() async {
        await execute()
        await workload.remove(lease.task)
    }

    private func execute() async {
        let task = lease.task
        // A prefetched lease waits here for room; it may be stolen (dropped) meanwhile.
        if lease.prefetched, !(await workload.reserve(task)) {
            logger.info("prefetched task \(task) dropped before it started")
            return
        }
        // The start report is the fence: a task stolen or cancelled meanwhile answers 409 and is dropped.
        switch await deliver("start \(task)", { () async throws(ClientError) -> TaskView in
            try await client.call("POST", APIPath.taskStart(task), json: TaskReport(epoch: lease.epoch))
        }) {
        case .success: break
        case .failure(let error):
            logger.info("task \(task) not started: \(error)")
            return
        case nil: return
        }

        let dir = config.workDir + "/tasks/\(task)-e\(lease.epoch)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let uploader = LogUploader(client: client, task: task, epoch: lease.epoch)

        let process: ChildProcess
        do {
            process = try ChildProcess.launch(argv: lease.command, environment: environment(workDir: dir),
                                              cwd: lease.cwd ?? dir)
        } catch {
            logger.warning("task \(task) cannot be launched: \(error)")
            ExceptionReporter(session: session, logger: logger).report(
                "launch_failed", error.description, task: task,
                context: ["command": lease.command.joined(separator: " ").prefix(512).description, "cwd": lease.cwd ?? dir])
            await uploader.append(Data("paddock: \(error.description)\n".utf8))
            await uploader.close()
            await drain(uploader)
            await finish(FinishReport(epoch: lease.epoch, outcome: .failed, exitCode: nil, reason: error.description))
            return
        }
        logger.info("task \(task) started (pid \(process.pid)): \(lease.command.joined(separator: " ").prefix(200))")
        let ledger = ProcessLedger(workDir: config.workDir)
        ledger.record(task: task, processGroup: process.pid)
        defer { ledger.forget(task: task) }
        if !(await workload.attach(process, to: task)) {
            await process.terminate(grace: config.killGrace)  // stopped before it was even launched
        }

        let progress = ProgressReporter(client: client, task: task, epoch: lease.epoch)
        let reader = Task {
            let frames = lease.frames.flatMap(FrameRange.init)?.ranges.first
            var scanner = ProgressLine.Scanner(pattern: lease.progressRegex.flatMap(ProgressLine.Pattern.init), frames: frames)
            for await chunk in process.output {
                await uploader.append(chunk)
                if let value = scanner.feed(chunk) { await progress.update(value) }
            }
            await uploader.close()
        }
        let pump = Task { await drain(uploader, progress: progress) }
        let timer = lease.timeout.map { seconds in
            Task { [workload, config, lease] in
                try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
                if let process = await workload.markStopped(lease.task, epoch: lease.epoch, reason: "timeout"), let process {
                    await process.terminate(grace: config.killGrace)
                }
            }
        }
        let status = await process.waitForExit()
        timer?.cancel()
        await reader.value
        await pump.value

        let stopped = await workload.stopReason(task)
        await workload.recordUsage(await process.finalUsage(), for: task)
        let usage = await workload.usage(of: task)
        var report: FinishReport
        if let stopped {
            report = stopped == Self.shutdownReason
                ? FinishReport(epoch: lease.epoch, outcome: .released, exitCode: nil, reason: stopped)
                : FinishReport(epoch: lease.epoch, outcome: .failed, exitCode: status.code, reason: stopped)
        } else if status.succeeded {
            report = FinishReport(epoch: lease.epoch, outcome: .succeeded, exitCode: 0)
        } else {
            report = FinishReport(epoch: lease.epoch, outcome: .failed, exitCode: status.code, reason: status.description)
        }
        report.usage = usage
        logger.info("task \(task) ended: \(status)")
        // Stopped because the master decided (cancelled, lease moved on): it will refuse this report, rightly.
        await finish(report, expectRefusal: stopped != nil && stopped != Self.shutdownReason && stopped != "timeout")
    }

    /// Uploads the log until all of it is acknowledged (or the lease is gone), retrying while the master is away.
    func drain(_ uploader: LogUploader, progress: ProgressReporter? = nil) async {
        var backoff = Backoff(base: 0.2, cap: 5)
        while !Task.isCancelled {
            let reached = await uploader.flush()
            await progress?.send()
            if await uploader.done { return }
            if reached {
                backoff.reset()
                await uploader.nap(.milliseconds(200))
            } else {
                try? await backoff.sleep()  // the master (or its database) is away: retry, without hammering it
            }
        }
    }

    /// `expectRefusal`: the master itself stopped the task (cancelled, or its lease moved on), so it will
    /// answer 409 to this report; that is no error.
    func finish(_ report: FinishReport, expectRefusal: Bool = false) async {
        let task = lease.task
        let result = await deliver("finish \(task)", { () async throws(ClientError) -> TaskView in
            try await client.call("POST", APIPath.taskFinish(task), json: report)
        })
        if case .failure(let error) = result {
            if expectRefusal && error.status == 409 {
                logger.info("task \(task) was stopped by the master; its end is already recorded")
            } else {
                logger.warning("finish of \(task) refused: \(error)")
            }
        }
    }

    /// Sends a report until the master answers; nil when cancelled first.
    func deliver<T: Sendable>(_ what: String, _ call: () async throws(ClientError) -> T) async -> Result<T, ClientError>? {
        var backoff = Backoff()
        while !Task.isCancelled {
            do {
                return .success(try await call())
            } catch where error.isRetryable {
                logger.debug("\(what): \(error); retrying")
                try? await backoff.sleep()
            } catch {
                return .failure(error)
            }
        }
        return nil
    }

    /// An explicit environment: a few of the agent's own (PATH, HOME, LANG), the PADDOCK_* facts, then the task's.
    func environment(workDir: String) -> [String: String] {
        let own = ProcessInfo.processInfo.environment
        var env: [String: String] = ["PATH": own["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"]
        for key in ["HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "TMPDIR"] { env[key] = own[key] }
        env["PADDOCK_TASK_ID"] = lease.task.description
        env["PADDOCK_JOB_ID"] = lease.job.description
        env["PADDOCK_TASK_NAME"] = lease.name
        env["PADDOCK_AGENT_ID"] = session.id.description
        env["PADDOCK_AGENT_NAME"] = config.name
        env["PADDOCK_ATTEMPT"] = String(lease.attempt)
        env["PADDOCK_EPOCH"] = lease.epoch.description
        env["PADDOCK_WORK_DIR"] = workDir
        env["PADDOCK_CPUS"] = ResourceVector.formatCPUs(lease.requirements.resources.milliCPUs)
        for (key, value) in lease.env { env[key] = value }
        return env
    }
}
