import Foundation
@testable import PaddockAgent
import PaddockProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `TaskRunner` in-process: a fake launcher's processes, a fake clock, a fake master. What a run's end
/// becomes in the outbox, and how a run is stopped.
@Suite(.timeLimit(.minutes(1))) struct TaskRunnerTests {
    /// Runs `lease` to its end; `drive` plays the process.
    private func run(_ lease: TaskLease, _ fixture: AgentFixture, _ drive: (FakeProcess) async -> Void) async -> ExchangeFinish? {
        await fixture.workload.add(lease)
        let runner = fixture.runner(lease)
        let running = Task { await runner.run() }
        let process = await fixture.launcher.launched.take()
        await drive(process)
        await running.value
        return await fixture.outbox.batch().finished.first { $0.task == lease.task }
    }

    /// A run whose cgroup was empty at its end leaves its directory as a spare for a later run; one
    /// that may have left a process behind (no cgroup said otherwise) has its directory removed.
    @Test func aRunsDirectoryIsKeptForALaterRunOnlyWhenNothingOfTheRunIsLeft() async throws {
        let fixture = AgentFixture()
        defer { fixture.close() }
        let tasks = fixture.config.workDir + "/tasks"
        _ = try #require(await run(AgentFixture.lease(31, epoch: 1), fixture) { $0.exit(.exited(0)) })
        #expect(WorkDirectory.spareCount(in: tasks) == 0)
        #expect((try? FileManager.default.contentsOfDirectory(atPath: tasks))?.isEmpty ?? true)
        _ = try #require(await run(AgentFixture.lease(32, epoch: 1), fixture) { $0.exit(.exited(0), leftNothing: true) })
        #expect(WorkDirectory.spareCount(in: tasks) == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: tasks).allSatisfy { $0.hasPrefix(".spare-") })
        WorkDirectory.removeSpares(in: tasks)
    }

    /// Once a run's finish is in the outbox its room is free (the next lease reserves it, a claim
    /// counts it) while its lease is still held, until its runner has recycled its directory.
    @Test func aReleasedRunsRoomIsFreeWhileItsLeaseIsStillHeld() async throws {
        let fixture = AgentFixture(slots: 2)
        defer { fixture.close() }
        let workload = fixture.workload
        let (a, c) = (AgentFixture.lease(1), AgentFixture.lease(3))
        let b = AgentFixture.lease(2, prefetched: true)
        for lease in [a, c, b] { await workload.add(lease) }
        #expect(await workload.claimRequest(wait: 0) == nil, "both slots run")
        let reserved = Task { await workload.reserve(b.task) }
        await workload.release(a.task)
        #expect(await reserved.value, "the prefetched lease takes the released room")
        #expect(Set(await workload.leases.map(\.task)) == [a.task, b.task, c.task], "the released run's lease is still held")
        #expect(await workload.freeSlots == 0)
        await workload.release(c.task)
        #expect(await workload.claimRequest(wait: 0)?.slots == 1, "the second released room is claimed for")
        await workload.remove(a.task)
        await workload.remove(c.task)
        #expect(await workload.claimRequest(wait: 0)?.slots == 1, "removing a released run frees nothing twice")
    }

    @Test func aRunThatExitsZeroSucceedsWithItsOutputAndUsage() async throws {
        let fixture = AgentFixture()
        defer { fixture.close() }
        let lease = AgentFixture.lease(1, epoch: 4, command: ["render", "--frame", "1"], env: ["SCENE": "a.blend"])
        let finish = try #require(await run(lease, fixture) { process in
            #expect(process.spec.argv == ["render", "--frame", "1"])
            #expect(process.spec.environment["SCENE"] == "a.blend")
            #expect(process.spec.environment["PADDOCK_TASK_ID"] == lease.task.description)
            #expect(process.spec.cwd == fixture.config.workDir + "/tasks/\(lease.task)-e4")
            process.print("PROGRESS 50%\nhello\n")
            process.exit(.exited(0))
        })
        #expect(finish.report.outcome == .succeeded)
        #expect(finish.report.exitCode == 0)
        #expect(finish.report.epoch == LeaseEpoch(4))
        #expect(finish.report.usage?.cpuSeconds == FakeProcess.usage.cpuSeconds)
        let batch = await fixture.outbox.batch()
        #expect(batch.logs.map { String(decoding: $0.data, as: UTF8.self) } == ["PROGRESS 50%\nhello\n"])
        #expect(batch.progress.map(\.progress) == [0.5])
        #expect(fixture.launcher.ended == [lease.task], "the launcher is told the run is over")
        #expect(await fixture.workload.isEmpty)
    }

    @Test(arguments: [PaddockAgent.ExitStatus.exited(3), .exited(1), .signaled(SIGSEGV)])
    func aRunThatExitsOtherwiseFails(status: PaddockAgent.ExitStatus) async throws {
        let fixture = AgentFixture()
        defer { fixture.close() }
        let finish = try #require(await run(AgentFixture.lease(1), fixture) { $0.exit(status) })
        #expect(finish.report.outcome == .failed)
        #expect(finish.report.exitCode == status.code)
        #expect(finish.report.reason == status.description)
    }

    /// The task's `timeout` runs on the agent's clock: nothing happens before it, the run is stopped
    /// with `StopReason.timeout` at it.
    @Test func aTimeoutStopsTheRunWithTheTimeoutReason() async throws {
        let fixture = AgentFixture()
        defer { fixture.close() }
        let finish = try #require(await run(AgentFixture.lease(1, timeout: 60), fixture) { process in
            await fixture.clock.sleeping { $0 == .seconds(60) }
            fixture.clock.advance(by: .seconds(59))
            #expect(process.received.isEmpty)
            fixture.clock.advance(by: .seconds(1))
            #expect(await process.signals.take() == SIGTERM)
        })
        #expect(finish.report.outcome == .failed)
        #expect(finish.report.reason == StopReason.timeout.rawValue)
        #expect(finish.report.exitCode == 128 + Int(SIGTERM))
    }

    /// A stop is SIGTERM, then SIGKILL once the grace has passed on the agent's clock if the run has
    /// not ended: the agent's `killGrace`, or the task's own `PADDOCK_STOP_GRACE`.
    @Test(arguments: [nil, 2])
    func aStopIsSIGTERMThenSIGKILLAfterTheGrace(ownGrace: Int?) async throws {
        let fixture = AgentFixture(killGrace: .seconds(5), exitOnTerm: false)
        defer { fixture.close() }
        let grace: Duration = ownGrace.map { .seconds($0) } ?? .seconds(5)
        let env = ownGrace.map { [StopGrace.variable: String($0)] } ?? [:]
        let finish = try #require(await run(AgentFixture.lease(1, env: env, timeout: 10), fixture) { process in
            await fixture.clock.sleeping { $0 == .seconds(10) }
            fixture.clock.advance(by: .seconds(10))
            #expect(await process.signals.take() == SIGTERM)
            await fixture.clock.sleeping { $0 == grace }
            fixture.clock.advance(by: grace - .milliseconds(1))
            #expect(process.received == [SIGTERM], "no SIGKILL within the grace")
            fixture.clock.advance(by: .milliseconds(1))
            #expect(await process.signals.take() == SIGKILL)
        })
        #expect(finish.report.outcome == .failed)
        #expect(finish.report.reason == StopReason.timeout.rawValue)
        #expect(finish.report.exitCode == 128 + Int(SIGKILL))
    }

    /// A run the agent stops as it leaves is given back (no attempt used); one that ended well
    /// meanwhile is a success.
    @Test func aRunStoppedByTheShutdownIsReleasedUnlessItSucceeded() async throws {
        for exitsWell in [false, true] {
            let fixture = AgentFixture(exitOnTerm: false)
            defer { fixture.close() }
            let lease = AgentFixture.lease(1)
            let finish = try #require(await run(lease, fixture) { process in
                let stop = await fixture.workload.markStopped(lease.task, reason: .shutdown)
                let terminated = Task { await stop?.terminate(grace: .seconds(5), clock: fixture.clock) }
                #expect(await process.signals.take() == SIGTERM)
                process.exit(exitsWell ? .exited(0) : .signaled(SIGTERM))
                await terminated.value
            })
            #expect(finish.report.outcome == (exitsWell ? .succeeded : .released))
            #expect(finish.report.reason == (exitsWell ? nil : StopReason.shutdown.rawValue))
        }
    }

    @Test func aRunThatCannotBeLaunchedFailsAndIsReported() async throws {
        let fixture = AgentFixture()
        defer { fixture.close() }
        fixture.launcher.failNext(LaunchError(description: "no such executable: render"))
        let lease = AgentFixture.lease(1)
        await fixture.workload.add(lease)
        await fixture.runner(lease).run()
        let batch = await fixture.outbox.batch()
        let finish = try #require(batch.finished.first)
        #expect(finish.report.outcome == .failed)
        #expect(finish.report.reason == "no such executable: render")
        #expect(batch.logs.map { String(decoding: $0.data, as: UTF8.self) } == ["paddock: no such executable: render\n"])
        let exception = await fixture.master.exceptions.take()
        #expect(exception.type == "launch_failed")
        #expect(exception.task == lease.task)
    }

    /// A run cancelled by the master ends failed with the cancel's reason, and its finish is one the
    /// master is expected to refuse.
    @Test func aCancelledRunFailsWithTheCancelReason() async throws {
        let fixture = AgentFixture()
        defer { fixture.close() }
        let lease = AgentFixture.lease(1)
        let finish = try #require(await run(lease, fixture) { process in
            await fixture.workload.markStopped(lease.task, epoch: lease.epoch, reason: .cancelled)?
                .terminate(grace: .seconds(5), clock: fixture.clock)
            #expect(process.received == [SIGTERM])
        })
        #expect(finish.report.outcome == .failed)
        #expect(finish.report.reason == StopReason.cancelled.rawValue)
    }
}
