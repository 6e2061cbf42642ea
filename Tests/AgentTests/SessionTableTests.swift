import Foundation
@testable import PaddockAgent
import PaddockProtocol
import Testing

/// Sessions in-process (`SessionTable`, the runner's part): a fake launcher's processes played by
/// the test, a fake clock for the linger. Which scripts run, in which order, with which environment.
@Suite(.timeLimit(.minutes(1))) struct SessionTableTests {
    static let plan = SessionPlan(key: "Render", environments: [
        .init(name: "Outer", enter: "enter outer", exit: "exit outer"),
        .init(name: "Inner", enter: "enter inner", exit: "exit inner"),
    ])

    static func lease(_ task: Int64) -> TaskLease {
        AgentFixture.lease(task, command: ["action", "\(task)"], env: [SessionPlan.variable: plan.json, "MINE": "\(task)"])
    }

    /// Plays an enter script: it saves the environment it was started with plus `adding`, and exits 0.
    static func enters(_ process: FakeProcess, adding: [String: String]) throws {
        let path = try #require(process.spec.environment[SessionPlan.snapshotVariable])
        let entries = process.spec.environment.merging(adding) { _, new in new }.map { "\($0.key)=\($0.value)\0" }.joined()
        try Data(entries.utf8).write(to: URL(fileURLWithPath: path))
        process.exit(.exited(0))
    }

    func runner(_ fixture: AgentFixture, _ table: SessionTable, _ lease: TaskLease) async -> Task<Void, Never> {
        await fixture.workload.add(lease)
        var runner = fixture.runner(lease)
        runner.sessions = table
        return Task { await runner.run() }
    }

    @Test func enteredOnceUsedByTheNextTaskExitedAfterTheLinger() async throws {
        let fixture = AgentFixture(slots: 2)
        defer { fixture.close() }
        let table = SessionTable.make(launcher: fixture.launcher, config: fixture.config, clock: fixture.clock, logger: fixture.logger)
        let first = await runner(fixture, table, Self.lease(1))
        let outer = await fixture.launcher.launched.take()
        #expect(outer.spec.argv == ["/bin/sh", "-c", "enter outer", "openjd-enter"])
        #expect(outer.spec.environment[SessionPlan.variable] == nil, "the plan is the agent's")
        let directory = try #require(outer.spec.environment[SessionPlan.directoryVariable])
        #expect(outer.spec.cwd == directory)
        // A second task of the session waits while the first enters.
        let second = await runner(fixture, table, Self.lease(2))
        try Self.enters(outer, adding: ["LICENSE": "42"])
        let inner = await fixture.launcher.launched.take()
        #expect(inner.spec.argv[2] == "enter inner")
        #expect(inner.spec.environment["LICENSE"] == "42", "started with what the outer environment left")
        try Self.enters(inner, adding: ["SCRATCH": "on"])
        // Both actions run with the environments' variables, their own, in the session's directory.
        var actions: [FakeProcess] = []
        for _ in 0..<2 { actions.append(await fixture.launcher.launched.take()) }
        for action in actions {
            let mine = try #require(action.spec.environment["MINE"])
            #expect(action.spec.argv == ["action", mine])
            #expect(action.spec.environment["LICENSE"] == "42" && action.spec.environment["SCRATCH"] == "on")
            #expect(action.spec.environment[SessionPlan.directoryVariable] == directory)
            #expect(action.spec.environment["PADDOCK_TASK_ID"] == "t\(mine)")
            #expect(action.spec.cwd == directory)
            action.exit(.exited(0))
        }
        await first.value
        await second.value
        let finished = await fixture.outbox.batch().finished
        #expect(finished.map(\.report.outcome) == [.succeeded, .succeeded])
        // Idle: exited after the linger, innermost first, each with its level's environment.
        await fixture.clock.sleeping { $0 == fixture.config.sessionLinger }
        fixture.clock.advance(by: fixture.config.sessionLinger)
        let exitInner = await fixture.launcher.launched.take()
        #expect(exitInner.spec.argv == ["/bin/sh", "-c", "exit inner", "openjd-exit"])
        #expect(exitInner.spec.environment["SCRATCH"] == "on")
        exitInner.exit(.exited(0))
        let exitOuter = await fixture.launcher.launched.take()
        #expect(exitOuter.spec.argv[2] == "exit outer")
        #expect(exitOuter.spec.environment["LICENSE"] == "42" && exitOuter.spec.environment["SCRATCH"] == nil)
        exitOuter.exit(.exited(0))
        // The next task of the key enters a new session.
        let third = await runner(fixture, table, Self.lease(3))
        let again = await fixture.launcher.launched.take()
        #expect(again.spec.argv[2] == "enter outer")
        #expect(again.spec.environment[SessionPlan.directoryVariable] != directory)
        again.exit(.exited(5))
        await third.value
        let failed = try #require(await fixture.outbox.batch().finished.first { $0.task == TaskID(rawValue: 3) })
        #expect(failed.report.outcome == .failed)
        #expect(failed.report.reason == "openjd: environment 'Outer': onEnter failed (exit code 5)")
    }

    /// A failing inner onEnter exits the outer environment (its output in the task's log) and the
    /// session is not kept.
    @Test func aFailedEnterExitsWhatWasEnteredAndIsTriedAgain() async throws {
        let fixture = AgentFixture()
        defer { fixture.close() }
        let table = SessionTable.make(launcher: fixture.launcher, config: fixture.config, clock: fixture.clock, logger: fixture.logger)
        let first = await runner(fixture, table, Self.lease(1))
        try Self.enters(await fixture.launcher.launched.take(), adding: [:])
        let inner = await fixture.launcher.launched.take()
        inner.print("no license\n")
        inner.exit(.exited(3))
        let exitOuter = await fixture.launcher.launched.take()
        #expect(exitOuter.spec.argv[2] == "exit outer")
        exitOuter.print("bye\n")
        exitOuter.exit(.exited(0))
        await first.value
        let batch = await fixture.outbox.batch()
        #expect(batch.finished.first?.report.reason == "openjd: environment 'Inner': onEnter failed (exit code 3)")
        #expect(batch.logs.map { String(decoding: $0.data, as: UTF8.self) }.joined() == "no license\nbye\n")
        let second = await runner(fixture, table, Self.lease(2))
        let again = await fixture.launcher.launched.take()
        #expect(again.spec.argv[2] == "enter outer", "entered again")
        again.exit(.exited(1))
        await second.value
    }

    /// A task cancelled while it enters stops entering; the environments it entered are exited.
    @Test func aCancelWhileEnteringStopsIt() async throws {
        let fixture = AgentFixture()
        defer { fixture.close() }
        let table = SessionTable.make(launcher: fixture.launcher, config: fixture.config, clock: fixture.clock, logger: fixture.logger)
        let lease = Self.lease(1)
        let first = await runner(fixture, table, lease)
        try Self.enters(await fixture.launcher.launched.take(), adding: [:])
        let inner = await fixture.launcher.launched.take()
        await fixture.workload.markStopped(lease.task, reason: .cancelled)?.terminate(grace: .seconds(5), clock: fixture.clock)
        #expect(inner.received == [SIGTERM])
        let exitOuter = await fixture.launcher.launched.take()
        #expect(exitOuter.spec.argv[2] == "exit outer")
        exitOuter.exit(.exited(0))
        await first.value
        let finish = try #require(await fixture.outbox.batch().finished.first)
        #expect(finish.report.reason == StopReason.cancelled.rawValue)
    }

    /// At the agent's end, open sessions are exited at once; an onExit that outlasts the bound is
    /// stopped and the environments outside it are not exited any more.
    @Test func closingExitsOpenSessionsWithinTheBound() async throws {
        let fixture = AgentFixture()
        defer { fixture.close() }
        let table = SessionTable.make(launcher: fixture.launcher, config: fixture.config, clock: fixture.clock, logger: fixture.logger)
        let first = await runner(fixture, table, Self.lease(1))
        try Self.enters(await fixture.launcher.launched.take(), adding: [:])
        try Self.enters(await fixture.launcher.launched.take(), adding: [:])
        await fixture.launcher.launched.take().exit(.exited(0))  // the action
        await first.value
        let closing = Task { await table.closeAll(within: .seconds(3), grace: .seconds(1)) }
        let exitInner = await fixture.launcher.launched.take()
        #expect(exitInner.spec.argv[2] == "exit inner", "exited at once, not after the linger")
        await fixture.clock.sleeping { $0 == .seconds(3) }
        fixture.clock.advance(by: .seconds(3))
        await closing.value
        #expect(exitInner.received == [SIGTERM])
        #expect(fixture.launcher.launched.waiting.isEmpty, "the outer onExit did not start")
    }

    /// A broken plan fails the task and says why.
    @Test func aBrokenPlanFailsTheTask() async throws {
        let fixture = AgentFixture()
        defer { fixture.close() }
        let table = SessionTable.make(launcher: fixture.launcher, config: fixture.config, clock: fixture.clock, logger: fixture.logger)
        let lease = AgentFixture.lease(1, env: [SessionPlan.variable: #"{"key": "S", "environments": [], "extra": 1}"#])
        await runner(fixture, table, lease).value
        let finish = try #require(await fixture.outbox.batch().finished.first)
        #expect(finish.report.outcome == .failed)
        #expect(finish.report.reason?.hasPrefix("paddock: the task's PADDOCK_SESSION is not a session plan: extra: unknown field") == true,
                "\(finish.report.reason ?? "")")
    }
}
