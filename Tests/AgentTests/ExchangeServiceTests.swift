import Foundation
@testable import PaddockAgent
import PaddockProtocol
import ServiceLifecycleTestKit
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The exchange loop (`ExchangeService`: the pump, the poller, the leases they bring) in-process,
/// against a fake master that answers each exchange when the test says, a fake launcher and a fake
/// clock. Nothing sleeps: the tests wait for the calls the agent makes.
@Suite(.timeLimit(.minutes(1))) struct ExchangeServiceTests {
    /// Runs the fixture's exchange service during `body`, then stops it as SIGTERM would (every
    /// report acknowledged from then on) and waits until it has returned.
    private func withExchangeService(_ fixture: AgentFixture, _ body: () async throws -> Void) async throws {
        try await testGracefulShutdown { trigger in
            let service = fixture.exchangeService
            let running = Task { try await service.run() }
            try await body()
            fixture.master.acknowledgeReports()
            trigger.triggerGracefulShutdown()
            try await running.value
        }
        #expect(fixture.launcher.closed)
    }

    private static func isLongPoll(_ request: ExchangeRequest) -> Bool { (request.claim?.wait ?? 0) > 0 }
    private static func finishes(_ request: ExchangeRequest) -> Bool { !request.finished.isEmpty }

    @Test func aClaimedTaskIsLaunchedAndItsFinishGoesInTheNextExchange() async throws {
        let fixture = AgentFixture(slots: 1)
        defer { fixture.close() }
        try await withExchangeService(fixture) {
            let poll = await fixture.master.exchanges.next(where: Self.isLongPoll)
            #expect(poll.request.claim?.slots == 1)
            #expect(!poll.request.hasReports)
            let lease = AgentFixture.lease(1, command: ["render", "1"])
            poll.answer(ExchangeResponse(leases: [lease]))

            let process = await fixture.launcher.launched.take()
            #expect(process.spec.task == lease.task)
            #expect(process.spec.argv == ["render", "1"])
            process.exit(.exited(0))

            let report = await fixture.master.exchanges.next(where: Self.finishes)
            #expect(report.request.finished.map(\.task) == [lease.task])
            #expect(report.request.finished.first?.report.outcome == .succeeded)
            // The ended run's room is claimed again in the same round trip.
            #expect(report.request.claim?.slots == 1)
            #expect(report.request.claim?.wait == 0)
            report.answer(ExchangeResponse())
        }
        let beats = fixture.master.beats
        #expect(beats.first.map { $0.authoritative && !$0.leaving } == true, "a fresh agent first says it holds nothing")
        #expect(beats.last.map { $0.authoritative && $0.leaving } == true, "and last that it leaves")
        #expect(fixture.master.tokens.last == "credential-of-a1", "it talks with its own credential once enrolled")
    }

    @Test func finishesThatEndWhileAnExchangeIsInFlightGoTogetherInTheNext() async throws {
        let fixture = AgentFixture(slots: 3)
        defer { fixture.close() }
        let tasks = (1...3).map { TaskID(rawValue: $0) }
        try await withExchangeService(fixture) {
            let poll = await fixture.master.exchanges.next(where: Self.isLongPoll)
            #expect(poll.request.claim?.slots == 3)
            poll.answer(ExchangeResponse(leases: (1...3).map { AgentFixture.lease($0) }))
            var processes: [TaskID: FakeProcess] = [:]
            for _ in tasks {
                let process = await fixture.launcher.launched.take()
                processes[process.spec.task] = process
            }
            processes[tasks[0]]?.exit(.exited(0))
            let first = await fixture.master.exchanges.next(where: Self.finishes)
            #expect(first.request.finished.map(\.task) == [tasks[0]])

            // Two more end while the first exchange waits for its answer.
            processes[tasks[1]]?.exit(.exited(0))
            processes[tasks[2]]?.exit(.exited(2))
            await fixture.until { await fixture.outbox.unacknowledged.count == 3 }
            first.answer(ExchangeResponse())

            let second = await fixture.master.exchanges.next(where: Self.finishes)
            #expect(Set(second.request.finished.map(\.task)) == Set(tasks[1...]))
            #expect(second.request.finished.first { $0.task == tasks[2] }?.report.outcome == .failed)
            #expect(second.request.claim?.slots == 3)
            second.answer(ExchangeResponse())
        }
        #expect(fixture.master.exchanges.requests.filter(Self.finishes).count == 2)
    }

    /// A transport error loses nothing: the same finish goes again after a back-off (on the agent's
    /// clock), and once the master has acknowledged it, never again.
    @Test func aFinishWhoseExchangeFailedIsSentAgainUntilAcknowledgedAndNotAfter() async throws {
        let fixture = AgentFixture()
        defer { fixture.close() }
        let task = TaskID(rawValue: 1)
        try await withExchangeService(fixture) {
            let poll = await fixture.master.exchanges.next(where: Self.isLongPoll)
            poll.answer(ExchangeResponse(leases: [AgentFixture.lease(1)]))
            await fixture.launcher.launched.take().exit(.exited(0))

            let first = await fixture.master.exchanges.next(where: Self.finishes)
            first.fail(.transport("POST /v1/agents/a7/exchange: connection reset by peer"))
            #expect(await fixture.outbox.unacknowledged == [HeldLease(task: task, epoch: LeaseEpoch(1))],
                    "kept, and still held in heartbeats")

            await fixture.clock.sleeping { $0 <= .milliseconds(100) }  // the back-off's first step
            fixture.clock.advance(by: .milliseconds(100))
            let again = await fixture.master.exchanges.next(where: Self.finishes)
            #expect(again.request.finished == first.request.finished)
            again.answer(ExchangeResponse())

            // Acknowledged: the next exchange is the poller's claim alone.
            let next = await fixture.master.exchanges.next()
            #expect(!next.request.hasReports)
            #expect(Self.isLongPoll(next.request))
            #expect(await fixture.outbox.unacknowledged.isEmpty)
        }
        #expect(fixture.master.exchanges.requests.filter { $0.finished.contains { $0.task == task } }.count == 2)
    }

    /// Every exchange carries its number. A heartbeat says up to which one all have ended, never past
    /// one still open (its leases may be on their way); a failed exchange ends at once and brings
    /// the next beat forward without waiting for the interval (its answer may have granted leases
    /// that never arrived, and the master frees their room only when a beat says so).
    @Test func aFailedExchangeEndsItsNumberAndBringsTheNextHeartbeatForward() async throws {
        let fixture = AgentFixture(slots: 1)
        defer { fixture.close() }
        try await withExchangeService(fixture) {
            let fresh = await fixture.master.heartbeats.take()
            #expect(fresh.authoritative && fresh.answered?.sequence == 0)
            let poll = await fixture.master.exchanges.next(where: Self.isLongPoll)
            let number = try #require(poll.request.number)
            #expect(number.incarnation == fresh.answered?.incarnation)
            let heartbeat = fixture.heartbeatService
            let beating = Task { try await heartbeat.run() }
            let first = await fixture.master.heartbeats.take()
            #expect(first.answered == ExchangeNumber(incarnation: number.incarnation, sequence: number.sequence - 1),
                    "the open long-poll is not said to have ended")
            await fixture.clock.sleeping { $0 == .seconds(10) }  // the beat waits for the master's interval

            poll.fail(.transport("POST /v1/agents/a7/exchange: connection reset by peer"))
            let second = await fixture.master.heartbeats.take()  // the clock has not moved
            #expect(second.answered == number)
            #expect(!second.authoritative)
            beating.cancel()
            try await beating.value

            await fixture.clock.sleeping { $0 <= .milliseconds(100) }  // the poller's back-off
            fixture.clock.advance(by: .milliseconds(100))
            let again = await fixture.master.exchanges.next(where: Self.isLongPoll)
            #expect(again.request.number == ExchangeNumber(incarnation: number.incarnation, sequence: number.sequence + 1))
            again.answer(ExchangeResponse())
        }
    }

    /// A refused start in an exchange's answer stops the run: stolen (`stale_epoch`), its end is
    /// dropped (another agent runs the task); refused for want of room, it is given back.
    @Test(arguments: [true, false])
    func aStartRefusedInTheAnswerStopsTheRun(stolen: Bool) async throws {
        let fixture = AgentFixture(slots: 1, prefetch: .fixed(1))
        defer { fixture.close() }
        let lease = AgentFixture.lease(1, epoch: 3, prefetched: true)
        try await withExchangeService(fixture) {
            let poll = await fixture.master.exchanges.next(where: Self.isLongPoll)
            #expect(poll.request.claim?.prefetch == 1)
            poll.answer(ExchangeResponse(leases: [lease]))

            // It fits beside what runs (nothing): it starts, and says so in the next exchange.
            let process = await fixture.launcher.launched.take()
            let start = await fixture.master.exchanges.next { !$0.started.isEmpty }
            #expect(start.request.started == [lease.held])
            let error: PaddockError = stolen ? .staleEpoch(task: lease.task, sent: lease.epoch, current: LeaseEpoch(4))
                : .conflict("no room for it on this agent yet")
            start.answer(ExchangeResponse(refused: [ExchangeRefusal(task: lease.task, epoch: lease.epoch, kind: .start, error: error)]))
            #expect(await process.signals.take() == SIGTERM)

            if stolen {
                await fixture.until { await fixture.workload.isEmpty }
            } else {
                let end = await fixture.master.exchanges.next(where: Self.finishes)
                #expect(end.request.finished.map(\.report.outcome) == [.released])
                #expect(end.request.finished.first?.report.reason == StopReason.startRefused.rawValue)
                end.answer(ExchangeResponse())
            }
        }
        #expect(fixture.master.exchanges.requests.filter(Self.finishes).count == (stolen ? 0 : 1))
    }

    /// SIGTERM with `--on-stop requeue`: the agent stops claiming, says it leaves, stops its runs and
    /// gives them back.
    @Test func aGracefulStopGivesTheRunningTasksBack() async throws {
        let fixture = AgentFixture()
        defer { fixture.close() }
        try await testGracefulShutdown { trigger in
            let service = fixture.exchangeService
            let running = Task { try await service.run() }
            let poll = await fixture.master.exchanges.next(where: Self.isLongPoll)
            poll.answer(ExchangeResponse(leases: [AgentFixture.lease(1)]))
            let process = await fixture.launcher.launched.take()

            trigger.triggerGracefulShutdown()
            #expect(await process.signals.take() == SIGTERM)
            let end = await fixture.master.exchanges.next(where: Self.finishes)
            #expect(end.request.finished.map(\.report.outcome) == [.released])
            #expect(end.request.finished.first?.report.reason == StopReason.shutdown.rawValue)
            #expect(end.request.claim == nil, "a leaving agent claims nothing")
            end.answer(ExchangeResponse())
            try await running.value
        }
        #expect(fixture.master.beats.contains { $0.leaving && !$0.authoritative })
        #expect(fixture.master.beats.last.map { $0.leaving && $0.authoritative } == true)
    }

    /// SIGTERM while the answer to a long-poll, carrying a lease, is already on its way: the lease
    /// goes back to the master (a `released` finish, nothing launched) before the goodbye, which
    /// then holds nothing. (Once the goodbye listed it as held: the master kept the task `running`
    /// until its lease timed out.)
    @Test func aLeaseAnsweredAsTheAgentLeavesIsGivenBackBeforeTheGoodbye() async throws {
        let fixture = AgentFixture(slots: 1)
        defer { fixture.close() }
        fixture.master.answerLongPollsDespiteCancellation()
        let lease = AgentFixture.lease(1)
        try await testGracefulShutdown { trigger in
            let service = fixture.exchangeService
            let running = Task { try await service.run() }
            let poll = await fixture.master.exchanges.next(where: Self.isLongPoll)
            fixture.master.acknowledgeReports()
            trigger.triggerGracefulShutdown()
            // The agent said it leaves: it has nothing to run or to tell, its pump ends.
            _ = await fixture.master.heartbeats.take { $0.leaving && !$0.authoritative }
            await fixture.until { await fixture.workload.leaving }
            poll.answer(ExchangeResponse(leases: [lease]))
            try await running.value
        }
        #expect(fixture.launcher.launched.waiting.isEmpty, "a leaving agent launches nothing")
        let released = fixture.master.exchanges.requests.flatMap(\.finished).filter { $0.task == lease.task }
        #expect(released.map(\.report.outcome) == [.released], "\(released)")
        let goodbye = try #require(fixture.master.beats.last)
        #expect(goodbye.leaving && goodbye.authoritative)
        #expect(goodbye.held.isEmpty, "\(goodbye.held)")
    }

    /// Answers the agent's first long-poll with a lease that runs at once and four prefetched ones.
    private static func handOutOneAndAStockOfFour(_ fixture: AgentFixture) async {
        let poll = await fixture.master.exchanges.next(where: isLongPoll)
        poll.answer(ExchangeResponse(leases: [AgentFixture.lease(1)] + (2...5).map { AgentFixture.lease(Int64($0), prefetched: true) }))
    }

    /// Five leases for one slot, four of them prefetched: while more than half the prefetch still
    /// waits once the slot is refilled, a finish waits for company, and the exchange that goes when
    /// the stock reaches half carries both finishes and both starts, and refills the prefetch.
    @Test func whilePrefetchedLeasesKeepTheSlotBusyFinishesWaitForCompany() async throws {
        let fixture = AgentFixture(slots: 1, prefetch: .fixed(4))
        defer { fixture.close() }
        try await withExchangeService(fixture) {
            await Self.handOutOneAndAStockOfFour(fixture)
            let first = await fixture.launcher.launched.take()
            first.exit(.exited(0))
            let second = await fixture.launcher.launched.take()
            #expect(second.spec.task == TaskID(rawValue: 2))
            second.exit(.exited(0))
            let report = await fixture.master.exchanges.next(where: Self.finishes)
            #expect(Set(report.request.finished.map(\.task)) == [TaskID(rawValue: 1), TaskID(rawValue: 2)])
            // The third may have started by then (its start then goes along) or not yet.
            #expect(report.request.started.map(\.task).contains(TaskID(rawValue: 2)))
            #expect((report.request.claim?.prefetch ?? 0) >= 1, "what was taken from the stock is claimed again")
            report.answer(ExchangeResponse())
            #expect(fixture.master.exchanges.requests.filter(Self.finishes).count == 1)
        }
    }

    /// A finish waits at most `Outbox.coalesceWindow` for company.
    @Test func aFinishWaitingForCompanyGoesAfterTheCoalescingWindow() async throws {
        let fixture = AgentFixture(slots: 1, prefetch: .fixed(4))
        defer { fixture.close() }
        try await withExchangeService(fixture) {
            await Self.handOutOneAndAStockOfFour(fixture)
            await fixture.launcher.launched.take().exit(.exited(0))
            _ = await fixture.launcher.launched.take()  // the next one runs; nothing else ends
            await fixture.clock.sleeping { $0 > .zero && $0 <= Outbox.coalesceWindow }
            fixture.clock.advance(by: Outbox.coalesceWindow)
            let report = await fixture.master.exchanges.next(where: Self.finishes)
            #expect(report.request.finished.map(\.task) == [TaskID(rawValue: 1)])
            #expect(report.request.started.map(\.task) == [TaskID(rawValue: 2)])
            report.answer(ExchangeResponse())
        }
    }

    /// A fresh agent that cannot tell the master it holds nothing (the master down as it starts)
    /// claims nothing until the master has heard it: the master would otherwise still count an
    /// earlier run's leases against the agent's room and refuse the starts of leases it prefetched.
    @Test func aFreshAgentClaimsOnlyOnceTheMasterHeardItHoldsNothing() async throws {
        let fixture = AgentFixture(slots: 1)
        defer { fixture.close() }
        fixture.master.failNextHeartbeat(.transport("PUT /v1/agents/a7/heartbeat: connection refused"))
        try await withExchangeService(fixture) {
            await fixture.clock.sleeping { $0 > .zero && $0 <= .seconds(1) }  // the back-off after the failure
            #expect(fixture.master.exchanges.requests.isEmpty, "no claim before the master heard the agent")
            fixture.clock.advance(by: .seconds(1))
            let poll = await fixture.master.exchanges.next(where: Self.isLongPoll)
            let beats = fixture.master.beats
            #expect(beats.count == 2 && beats.allSatisfy { $0.authoritative && !$0.leaving && $0.held.isEmpty }, "\(beats)")
            poll.answer(ExchangeResponse())
        }
    }

    /// Every exchange asks for the talkback commands after the last one received, and its answer
    /// brings them; an exchange that failed is asked again from the same cursor.
    @Test func theCommandsComeWithTheExchangesAndAFailedOneAsksAgainFromTheSameCursor() async throws {
        let fixture = AgentFixture(slots: 1)
        defer { fixture.close() }
        let ping = AgentCommand(seq: 5, kind: .ping, createdAt: Date(), expiresAt: Date().addingTimeInterval(3600))
        try await withExchangeService(fixture) {
            let poll = await fixture.master.exchanges.next(where: Self.isLongPoll)
            #expect(poll.request.talkback == TalkbackPoll(after: 0, wait: fixture.config.claimWait))
            poll.answer(ExchangeResponse(talkback: CommandBatch(commands: [ping], last: 5)))
            let next = await fixture.master.exchanges.next(where: Self.isLongPoll)
            #expect(next.request.talkback?.after == 5)
            next.fail(.transport("POST /v1/agents/a7/exchange: connection refused"))
            await fixture.clock.sleeping { $0 <= .milliseconds(100) }  // the back-off's first step
            fixture.clock.advance(by: .milliseconds(100))
            let again = await fixture.master.exchanges.next(where: Self.isLongPoll)
            #expect(again.request.talkback?.after == 5)
        }
    }

    /// With every slot busy the agent has no claim to hold, but still hears its commands: once its
    /// reports have settled it holds a long-poll for them alone, and a cancel stops the run.
    @Test func withNoRoomTheAgentHoldsALongPollForItsCommands() async throws {
        let fixture = AgentFixture(slots: 1)
        defer { fixture.close() }
        let lease = AgentFixture.lease(1, epoch: 2)
        let talkback = Task { try await fixture.talkbackService().run() }
        defer { talkback.cancel() }
        try await withExchangeService(fixture) {
            let poll = await fixture.master.exchanges.next(where: Self.isLongPoll)
            poll.answer(ExchangeResponse(leases: [lease]))
            let process = await fixture.launcher.launched.take()
            #expect(fixture.master.exchanges.requests.count == 1, "no long-poll while the pump may still report")
            await fixture.clock.sleeping { $0 > .zero && $0 <= ExchangeService.talkbackSettle }
            fixture.clock.advance(by: ExchangeService.talkbackSettle)
            let listen = await fixture.master.exchanges.next { $0.talkback?.wait ?? 0 > 0 }
            #expect(listen.request.claim == nil, "no room: it claims nothing")
            #expect(listen.request.talkback?.after == 0)
            let cancel = AgentCommand(seq: 1, kind: .cancel, task: lease.task, epoch: lease.epoch, createdAt: Date(),
                                      expiresAt: Date().addingTimeInterval(3600))
            listen.answer(ExchangeResponse(talkback: CommandBatch(commands: [cancel], last: 1)))
            #expect(await process.signals.take() == SIGTERM)
            let end = await fixture.master.exchanges.next(where: Self.finishes)
            #expect(end.request.finished.first?.report.reason == StopReason.cancelled.rawValue)
            #expect(end.request.talkback == TalkbackPoll(after: 1), "a report's exchange asks for the commands too, without waiting")
            end.answer(ExchangeResponse())
        }
    }

    /// A talkback-only hold gives way to a claim once the agent may claim again with nothing left to
    /// report: here its slot freed after its finish went out (under load the run is removed after its
    /// finish's exchange), which no exchange of the pump follows. Before, it waited out its `wait`.
    @Test func aTalkbackOnlyHoldEndsWhenTheAgentMayClaimAgain() async throws {
        let fixture = AgentFixture(slots: 1)
        defer { fixture.close() }
        try await withExchangeService(fixture) {
            let poll = await fixture.master.exchanges.next(where: Self.isLongPoll)
            poll.answer(ExchangeResponse(leases: [AgentFixture.lease(1, epoch: 2)]))
            let process = await fixture.launcher.launched.take()
            await fixture.clock.sleeping { $0 > .zero && $0 <= ExchangeService.talkbackSettle }
            fixture.clock.advance(by: ExchangeService.talkbackSettle)
            let listen = await fixture.master.exchanges.next { $0.talkback?.wait ?? 0 > 0 }
            #expect(listen.request.claim == nil, "no room: it claims nothing")
            process.exit(.exited(0))
            // This master does not supersede the hold (a real one would, on the finish's exchange).
            let end = await fixture.master.exchanges.next(where: Self.finishes)
            end.answer(ExchangeResponse())
            let claim = await fixture.master.exchanges.next(where: Self.isLongPoll)
            #expect(claim.request.claim?.slots == 1)
            #expect(!claim.request.hasReports)
            claim.answer(ExchangeResponse())
        }
    }
}
