import Foundation
@testable import PaddockAgent
import PaddockProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `HeartbeatService` in-process: what a beat holds, the runs it stops, when it beats again.
@Suite(.timeLimit(.minutes(1))) struct HeartbeatServiceTests {
    /// A lease the master says is lost stops its run (once, however often it is said); an
    /// unacknowledged end is still held; the next beat comes after the master's interval.
    @Test func aLeaseTheMasterSaysIsLostStopsItsRun() async throws {
        let fixture = AgentFixture(slots: 2, killGrace: .seconds(60), exitOnTerm: false)  // no SIGKILL within the test
        defer { fixture.close() }
        let lease = AgentFixture.lease(1, epoch: 2)
        let process = try await fixture.running(lease)
        let ended = FinishReport(epoch: LeaseEpoch(1), outcome: .succeeded, exitCode: 0)
        await fixture.outbox.finish(TaskID(rawValue: 9), ended, expectRefusal: false)
        try await fixture.session.enroll()
        fixture.master.answerNextHeartbeat(lost: [lease.held])
        fixture.master.answerNextHeartbeat(lost: [lease.held])
        let service = fixture.heartbeatService
        let running = Task { try await service.run() }

        let beat = await fixture.master.heartbeats.take()
        #expect(Set(beat.held) == [lease.held, HeldLease(task: TaskID(rawValue: 9), epoch: LeaseEpoch(1))])
        #expect(!beat.leaving && !beat.authoritative)
        #expect(await process.signals.take() == SIGTERM)
        #expect(await fixture.workload.stopReason(lease.task) == .leaseLost)

        await fixture.clock.sleeping { $0 == .seconds(10) }  // the interval the master gave
        #expect(fixture.master.beats.count == 1)
        fixture.clock.advance(by: .seconds(10))
        _ = await fixture.master.heartbeats.take()
        await fixture.clock.sleeping { $0 == .seconds(10) }
        #expect(process.received == [SIGTERM], "stopped once, though said lost twice")
        process.exit(.signaled(SIGTERM))
        running.cancel()
        try await running.value
    }

    /// A beat that fails is tried again sooner than the interval (a lease must not lapse for one lost beat).
    @Test func aFailedBeatIsTriedAgainAfterABackOff() async throws {
        let fixture = AgentFixture()
        defer { fixture.close() }
        try await fixture.session.enroll()
        fixture.master.failNextHeartbeat(.transport("PUT /v1/agents/a7/heartbeat: connection refused"))
        let service = fixture.heartbeatService
        let running = Task { try await service.run() }
        _ = await fixture.master.heartbeats.take()
        await fixture.clock.sleeping { $0 <= .milliseconds(200) }
        fixture.clock.advance(by: .milliseconds(200))
        _ = await fixture.master.heartbeats.take()
        #expect(fixture.master.beats.count == 2)
        running.cancel()
        try await running.value
    }

    /// Idle (no lease, nothing unreported) on a host that does not move, the agent is kept alive by
    /// its long-polls: it beats every `idleInterval` to report its host, not every interval; given a
    /// lease, it beats at the next interval, as a lease needs.
    @Test func anIdleAgentBeatsOnlyEveryIdleIntervalAndAgainAtOnceWhenItHoldsALease() async throws {
        let fixture = AgentFixture()
        defer { fixture.close() }
        try await fixture.session.enroll()
        var service = fixture.heartbeatService
        service.hostMoved = { _, _ in false }
        let running = Task { try await service.run() }
        let first = await fixture.master.heartbeats.take()
        #expect(first.held.isEmpty && first.metrics != nil)
        // Five intervals of 10 s pass without a beat; the sixth (60 s idle) brings one.
        for _ in 0..<5 {
            await fixture.clock.sleeping { $0 == .seconds(10) }
            fixture.clock.advance(by: .seconds(10))
        }
        await fixture.clock.sleeping { $0 == .seconds(10) }
        #expect(fixture.master.beats.count == 1)
        fixture.clock.advance(by: .seconds(10))
        _ = await fixture.master.heartbeats.take()
        #expect(fixture.master.beats.count == 2)

        // A lease arrives during the idle stretch: it is renewed at the next interval.
        await fixture.clock.sleeping { $0 == .seconds(10) }
        fixture.clock.advance(by: .seconds(10))
        await fixture.clock.sleeping { $0 == .seconds(10) }
        #expect(fixture.master.beats.count == 2)
        let lease = AgentFixture.lease(4)
        await fixture.workload.add(lease)
        fixture.clock.advance(by: .seconds(10))
        let renewing = await fixture.master.heartbeats.take()
        #expect(renewing.held == [lease.held])
        running.cancel()
        try await running.value
    }

    /// An idle agent whose host moved reports it at the next interval, with the sample that moved.
    @Test func anIdleAgentWhoseHostMovedBeatsAtTheNextInterval() async throws {
        let fixture = AgentFixture()
        defer { fixture.close() }
        try await fixture.session.enroll()
        var service = fixture.heartbeatService
        service.hostMoved = { _, _ in true }
        let running = Task { try await service.run() }
        _ = await fixture.master.heartbeats.take()
        await fixture.clock.sleeping { $0 == .seconds(10) }
        fixture.clock.advance(by: .seconds(10))
        let second = await fixture.master.heartbeats.take()
        #expect(second.metrics != nil)
        running.cancel()
        try await running.value
    }

    /// What counts as a host that moved: 5 points of CPU, 2 % of memory, 1 % of disk, a GPU's 5 points.
    @Test func whatMovesAHost() {
        let base = HostMetrics(at: Date(timeIntervalSince1970: 0),
                               cpu: .init(busyPercent: 20, perCore: [20, 20], cores: 2),
                               load: .init(one: 0.1, five: 0.1, fifteen: 0.1),
                               memory: .init(total: 1000, used: 500, available: 500, swapTotal: 0, swapUsed: 0),
                               disk: .init(path: "/", total: 1000, free: 500), gpus: [])
        #expect(HeartbeatService.hostMoved(base, since: nil))
        #expect(!HeartbeatService.hostMoved(base, since: base))
        var cpu = base
        cpu.cpu.busyPercent = 24
        #expect(!HeartbeatService.hostMoved(cpu, since: base))
        cpu.cpu.busyPercent = 25
        #expect(HeartbeatService.hostMoved(cpu, since: base))
        var memory = base
        memory.memory.used = 519
        #expect(!HeartbeatService.hostMoved(memory, since: base))
        memory.memory.used = 520
        #expect(HeartbeatService.hostMoved(memory, since: base))
        var disk = base
        disk.disk.free = 490
        #expect(HeartbeatService.hostMoved(disk, since: base))
        var later = base
        later.at = Date(timeIntervalSince1970: 60)
        later.load.one = 0.5
        #expect(!HeartbeatService.hostMoved(later, since: base), "time and load averages alone do not count")
    }
}
