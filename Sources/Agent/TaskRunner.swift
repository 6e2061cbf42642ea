import Foundation
import Logging
import PaddockClient
import PaddockProtocol

/// Runs one leased task, from its lease to its finish, which it leaves in the outbox: the
/// exchange loop tells the master. A lease that fits the agent's room runs at once (the master
/// recorded it started when it handed it out); a prefetched one waits for room, then runs, and its
/// start rides the next exchange (a lease stolen meanwhile is refused there, and this run stopped).
struct TaskRunner: Sendable {
    let lease: TaskLease
    let session: AgentSession.Enrolled
    let workload: Workload
    let outbox: Outbox
    let config: AgentConfig
    let launcher: any ProcessLauncher
    let clock: any AgentClock
    let logger: Logger
    /// The agent's OpenJD sessions (a task whose lease carries a `SessionPlan` runs in one).
    var sessions: SessionTable? = nil

    func run() async {
        await execute()
        await workload.remove(lease.task)
    }

    private func execute() async {
        let task = lease.task
        // A prefetched lease waits here for room; an idle agent may ask for it back meanwhile (give_back).
        if lease.prefetched {
            guard await workload.reserve(task) else {
                if await workload.stopReason(task) == .givenBack {
                    // Back to the queue, no attempt used: the idle agent that asked for it takes it there.
                    await outbox.releaseUnlaunched(task, epoch: lease.epoch, reason: .givenBack)
                } else {
                    logger.info("prefetched task \(task) dropped before it started")
                }
                return
            }
            await outbox.started(task, epoch: lease.epoch)
        }
        await outbox.open(task, epoch: lease.epoch)

        let dir = config.workDir + "/tasks/\(task)-e\(lease.epoch)"
        WorkDirectory.make(dir)
        // Kept for a later run only when the run's cgroup showed nothing of it left (a daemon it
        // left behind could still write there).
        var leftNothing = false
        defer { if leftNothing { WorkDirectory.recycle(dir) } else { WorkDirectory.remove(dir) } }
        // The task's own directory is the task user's: the rest of the agent's work dir is not.
        if let user = config.taskUser { _ = chown(dir, user.uid, user.gid) }

        // The task's timeout covers entering its session, when it enters one, and its action.
        let timer = lease.timeout.map { seconds in
            Task { [workload, config, lease, clock] in
                try await clock.sleep(for: .milliseconds(Int(seconds * 1000)))
                await workload.markStopped(lease.task, epoch: lease.epoch, reason: .timeout)?
                    .terminate(grace: config.killGrace, clock: clock)
            }
        }
        defer { timer?.cancel() }
        switch await startSession(sessions: sessions) {
        case .finished:
            return
        case .none:
            leftNothing = await runAction(dir: dir, in: nil, timer: timer)
        case .joined(let joined):
            leftNothing = await runAction(dir: dir, in: joined, timer: timer)
            await sessions?.leave(joined.key)
        }
    }

    /// Launches the task's command (in its session, if it has one), relays its output, and leaves
    /// its finish in the outbox. True when the run's cgroup showed nothing of it left at its end.
    private func runAction(dir: String, in openSession: OpenSession?, timer: Task<Void, any Error>?) async -> Bool {
        let task = lease.task
        let process: any RunningProcess
        // The wall-clock moment the agent turns to the launch: after its steps for the task (its
        // outbox entry, its work directory, its session), before the command's environment is built
        // and the child is started. The debug log carries it so that `paddock-bench latency` can set
        // it beside the peers' start stamp (their task body's first line, before it spawns its child).
        let launchBegan = Date()
        do throws(LaunchError) {
            let launch = openSession.map { sessionLaunch(workDir: dir, session: $0) } ?? mappedLaunch(workDir: dir)
            process = try launcher.launch(LaunchSpec(task: task, epoch: lease.epoch, resources: lease.requirements.resources,
                                                     argv: launch.argv, environment: launch.environment,
                                                     cwd: launch.cwd ?? dir, user: config.taskUser))
        } catch {
            logger.warning("task \(task) cannot be launched: \(error)")
            ExceptionReporter(session: session, clock: clock, logger: logger).report(
                "launch_failed", error.description, task: task,
                context: ["command": lease.command.joined(separator: " ").prefix(512).description, "cwd": lease.cwd ?? dir])
            await outbox.append(task, Data("paddock: \(error.description)\n".utf8))
            await outbox.finish(task, FinishReport(epoch: lease.epoch, outcome: .failed, exitCode: nil, reason: error.description),
                                expectRefusal: false)
            return false
        }
        let launchedAt = clock.now
        logger.debug("task \(task) started (pid \(process.pid); launch began at \(String(format: "%.6f", launchBegan.timeIntervalSince1970))): \(lease.command.joined(separator: " ").prefix(200))")
        defer { launcher.ended(task) }
        if !(await workload.attach(process, to: task, workDir: openSession?.directory ?? dir)) {
            await process.terminate(grace: config.killGrace, clock: clock)  // stopped before it was even launched
        }

        // OpenJD's `openjd_redacted_env:` values (its session's, and any the run prints) never reach the log.
        let secrets = openSession?.secrets ?? []
        let reader = Task { [outbox, lease, logger] in
            var progress = ProgressReader(progressRegex: lease.progressRegex,
                                          frames: lease.frames.flatMap(FrameRange.init)?.ranges.first)
            var messages = StdoutMessageRelay(outbox: outbox, task: lease.task, epoch: lease.epoch)
            var redactor = Redactor(secrets: secrets)
            var output = process.output.makeAsyncIterator()
            var ended = false
            while !ended {
                let chunk: Data
                if let next = await output.next() {
                    chunk = redactor.feed(next)
                } else {
                    chunk = redactor.flush()
                    ended = true
                }
                guard !chunk.isEmpty else { continue }
                await outbox.append(lease.task, chunk)
                let read = await progress.feed(chunk)
                if let warning = read.warning {
                    logger.warning("task \(lease.task): \(warning.dropLast())")
                    await outbox.append(lease.task, Data(warning.utf8))
                }
                if let value = read.progress { await outbox.progress(lease.task, epoch: lease.epoch, value) }
                await messages.feed(chunk)
            }
            return messages.failure
        }
        let ending = await process.ending()
        let status = ending.status
        timer?.cancel()
        let ran = clock.now - launchedAt
        let failure = await reader.value
        let concluded = await workload.conclude(task, usage: ending.usage, ran: ran)
        if let prefetch = concluded.prefetch {
            logger.info("prefetching \(prefetch) lease(s) beyond the running tasks (\(config.prefetch): \(prefetch > 0 ? "the last runs were short" : "the last runs were long"))")
        }
        let stopped = concluded.stopReason
        var report: FinishReport
        switch stopped {
        case let reason? where reason.releases && !status.succeeded:
            report = FinishReport(epoch: lease.epoch, outcome: .released, exitCode: nil, reason: reason.rawValue)
        case .shutdown? where failure == nil && !ending.oomKilled:
            // It ended well as the agent began to stop (on its own, or on the SIGTERM it was sent): a
            // success. Given back or failed, it would run a second time.
            report = FinishReport(epoch: lease.epoch, outcome: .succeeded, exitCode: 0)
        case let reason?:
            report = FinishReport(epoch: lease.epoch, outcome: .failed, exitCode: status.code, reason: reason.rawValue)
        case nil where ending.oomKilled:
            // The kernel ended it for going past its memory limit: a failure of the task, not of the host.
            let limit = process.memoryLimit.map { " of \(ByteSize.format($0))" } ?? ""
            let message = "paddock: the task went past its memory limit\(limit) and the kernel's OOM killer ended it (\(status))"
            await outbox.append(task, Data((message + "\n").utf8))
            ExceptionReporter(session: session, clock: clock, logger: logger).report(
                "oom", message, task: task, context: ["limit": process.memoryLimit.map(String.init) ?? "none"])
            report = FinishReport(epoch: lease.epoch, outcome: .failed, exitCode: status.code, reason: "oom")
        case nil where failure != nil:
            // The run said why it failed (`openjd_fail: TEXT`): it fails with that reason, whatever its exit.
            report = FinishReport(epoch: lease.epoch, outcome: .failed, exitCode: status.code, reason: failure)
        case nil where status.succeeded:
            report = FinishReport(epoch: lease.epoch, outcome: .succeeded, exitCode: 0)
        case nil:
            report = FinishReport(epoch: lease.epoch, outcome: .failed, exitCode: status.code, reason: status.description)
        }
        report.usage = concluded.usage
        logger.debug("task \(task) ended: \(status)")
        await outbox.finish(task, report, expectRefusal: stopped?.masterDecided ?? false)
        // The next run may take the room now: its start goes in the outbox after this finish, so no
        // exchange tells the master of the one without the other.
        await workload.release(task)
        return ending.leftNothing
    }

    /// The agent's own environment, read once: it does not change while the agent runs, and reading
    /// it builds a dictionary of every variable (per task, a measurable share of the agent's CPU).
    static let agentEnvironment = ProcessInfo.processInfo.environment

    /// An explicit environment: a few of the agent's own (PATH, HOME, LANG), the PADDOCK_* facts, then the task's.
    func environment(workDir: String) -> [String: String] {
        let own = Self.agentEnvironment
        var env: [String: String] = ["PATH": own["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"]
        for key in ["HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "TMPDIR"] { env[key] = own[key] }
        if let user = config.taskUser {
            env["HOME"] = user.home
            env["USER"] = user.name
            env["LOGNAME"] = user.name
        }
        env["PADDOCK_TASK_ID"] = lease.task.description
        env["PADDOCK_JOB_ID"] = lease.job.description
        env["PADDOCK_TASK_NAME"] = lease.name
        env["PADDOCK_AGENT_ID"] = session.id.description
        env["PADDOCK_AGENT_NAME"] = config.name
        env["PADDOCK_ATTEMPT"] = String(lease.attempt)
        env["PADDOCK_EPOCH"] = lease.epoch.description
        env["PADDOCK_WORK_DIR"] = workDir
        env["PADDOCK_CPUS"] = ResourceVector.formatCPUs(lease.requirements.resources.milliCPUs)
        // The session plan is the agent's: its scripts are no business of the processes.
        for (key, value) in lease.env where key != SessionPlan.variable { env[key] = value }
        return env
    }
}
