import Foundation
import PaddockProtocol
#if canImport(Glibc)
import Glibc
#endif

extension TaskRunner {
    /// The session a task runs in, if its lease carries a plan (`PADDOCK_SESSION`): joined, and
    /// entered when this task is its first here. nil when the task has been finished here instead
    /// (its plan is broken, entering failed or was stopped); `.none` when it has no session.
    enum SessionStart { case none, joined(OpenSession), finished }

    func startSession(sessions: SessionTable?) async -> SessionStart {
        let plan: SessionPlan
        do {
            guard let found = try SessionPlan.from(env: lease.env) else { return .none }
            plan = found
        } catch {
            let described = WireJSON.describe(error)
            await fail("paddock: the task's \(SessionPlan.variable) is not a session plan: "
                + (described.field.map { $0 + ": " } ?? "") + described.message)
            return .finished
        }
        guard let sessions else {
            await fail("paddock: this agent runs no sessions")
            return .finished
        }
        let key = SessionKey(job: lease.job, name: plan.key)
        switch await sessions.join(key) {
        case .open(let session):
            return .joined(session)
        case .enter:
            if let session = await enter(plan, key: key, scripts: sessions.scripts) {
                await sessions.entered(session)
                return .joined(session)
            }
            await sessions.enterFailed(key)
            return .finished
        }
    }

    /// Enters the session's environments into a new session directory, their output in this task's
    /// log. On failure or stop, exits what was entered (its output in this task's log too), reports
    /// the task's finish and returns nil.
    private func enter(_ plan: SessionPlan, key: SessionKey, scripts: SessionScripts) async -> OpenSession? {
        let task = lease.task
        let directory = config.workDir + "/\(SessionTable.directory)/\(lease.job)-\(task)-e\(lease.epoch)"
        WorkDirectory.make(directory)
        if let user = config.taskUser { _ = chown(directory, user.uid, user.gid) }
        var base = mappedLaunch(workDir: directory).environment
        base[SessionPlan.directoryVariable] = directory
        let owner = LaunchSpec(task: task, epoch: lease.epoch, resources: lease.requirements.resources, argv: [],
                               environment: base, cwd: directory, user: config.taskUser)
        logger.info("task \(task) enters session \(key)")
        var redactor = Redactor()
        let entry = await scripts.enter(plan, owner: owner, base: base, redactor: &redactor,
                                        attach: { [workload] in await workload.attach($0, to: task, workDir: directory) },
                                        output: { [outbox] in await outbox.append(task, $0) })
        let entered: [SessionVariables]
        var report: FinishReport
        var expectRefusal = false
        // Stopped by the agent (a cancel, the timeout, a lost lease, the agent leaving): that is the reason.
        if let stopped = await workload.stopReason(task) {
            switch entry {
            case .entered(let levels), .failed(_, _, let levels), .stopped(let levels, _): entered = levels
            }
            expectRefusal = stopped.masterDecided
            report = FinishReport(epoch: lease.epoch, outcome: stopped.releases ? .released : .failed, exitCode: nil,
                                  reason: stopped.rawValue)
        } else {
            switch entry {
            case .entered(let levels):
                return OpenSession(key: key, plan: plan, directory: directory, base: base, levels: levels, owner: owner,
                                   secrets: redactor.secrets,
                                   reporter: ExceptionReporter(session: session, clock: clock, logger: logger))
            case .failed(let level, let status, let levels):
                entered = levels
                let name = plan.environments[level].name
                report = FinishReport(epoch: lease.epoch, outcome: .failed, exitCode: status.code,
                                      reason: "openjd: environment '\(name)': onEnter failed (\(status))")
            case .stopped(let levels, let launchError):
                entered = levels
                let description = launchError?.description ?? "stopped"
                await outbox.append(task, Data("paddock: \(description)\n".utf8))
                report = FinishReport(epoch: lease.epoch, outcome: .failed, exitCode: nil, reason: description)
            }
        }
        logger.info("task \(task): entering session \(key) ended early: \(report.reason ?? "")")
        // An agent that is leaving bounds them (its runs must end within its stop deadline).
        let bound = await workload.leaving ? SessionTable.shutdownBound : nil
        await scripts.exit(plan, key: key, owner: owner, base: base, levels: entered, secrets: redactor.secrets,
                           reporter: ExceptionReporter(session: session, clock: clock, logger: logger), bound: bound,
                           output: { [outbox] in await outbox.append(task, $0) })
        WorkDirectory.remove(directory)
        report.usage = await workload.usage(of: task)
        await outbox.finish(task, report, expectRefusal: expectRefusal)
        return nil
    }

    /// The action's launch in its session: the environments' variables over the task's own, the
    /// session's directory (`$PADDOCK_SESSION_DIR`) as its working directory.
    func sessionLaunch(workDir: String, session: OpenSession) -> PathMappingEnvironment.Launch {
        var launch = mappedLaunch(workDir: workDir)
        launch.environment = session.variables.applied(to: launch.environment)
        launch.environment[SessionPlan.directoryVariable] = session.directory
        launch.cwd = launch.cwd ?? session.directory
        return launch
    }

    /// Fails the task before anything was launched, saying why in its log.
    private func fail(_ reason: String) async {
        logger.warning("task \(lease.task): \(reason)")
        await outbox.append(lease.task, Data((reason + "\n").utf8))
        await outbox.finish(lease.task, FinishReport(epoch: lease.epoch, outcome: .failed, exitCode: nil, reason: reason),
                            expectRefusal: false)
    }
}
