import Foundation
@testable import PaddockAgent
import PaddockProtocol
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `TalkbackService` in-process: the test puts command batches in its feed as exchanges' answers
/// would (`ExchangeServiceTests` has them come with real exchanges), fake processes, a fake clock.
/// The feed's poll is what the next exchange asks for (docs/ARCHITECTURE.md §6).
@Suite(.timeLimit(.minutes(1))) struct TalkbackServiceTests {
    private static func command(_ seq: Int64, _ kind: CommandKind, task: Int64? = nil, epoch: Int64? = nil,
                                resources: ResourceVector? = nil) -> AgentCommand {
        AgentCommand(seq: seq, kind: kind, task: task.map { TaskID(rawValue: $0) }, epoch: epoch.map { LeaseEpoch($0) },
                     resources: resources, createdAt: Date(), expiresAt: Date().addingTimeInterval(3600))
    }

    /// Runs the talkback service on `feed` (the fixture's unless given) while `body` delivers commands.
    private func withTalkback(_ fixture: AgentFixture, feed: CommandFeed? = nil, shutdown: @escaping @Sendable () -> Void = {},
                              _ body: (CommandFeed) async throws -> Void) async throws {
        let feed = feed ?? fixture.feed
        let service = fixture.talkbackService(feed: feed, shutdown: shutdown)
        let running = Task { try await service.run() }
        try await body(feed)
        running.cancel()
        try await running.value
    }

    /// Puts `batch` in the feed as an exchange's answer would; returns once it has been applied.
    private func deliver(_ batch: CommandBatch, to feed: CommandFeed) async {
        let target = max(feed.poll(for: FakeMaster.agent).after, batch.last)
        feed.put(batch, agent: FakeMaster.agent)
        while true {
            let seen = feed.progress.generation
            if feed.applied >= target { return }
            await feed.progress.wait(since: seen, timeout: .seconds(86_400))
        }
    }

    private func deliver(_ commands: [AgentCommand], to feed: CommandFeed) async {
        await deliver(CommandBatch(commands: commands, last: commands.map(\.seq).max() ?? 0), to: feed)
    }

    @Test func aCancelStopsTheNamedRunWithTheCancelReasonAndADropWithItsOwn() async throws {
        let fixture = AgentFixture(slots: 3)
        defer { fixture.close() }
        let cancelled = try await fixture.running(AgentFixture.lease(1, epoch: 3))
        let dropped = try await fixture.running(AgentFixture.lease(2, epoch: 1))
        let untouched = try await fixture.running(AgentFixture.lease(3, epoch: 1))
        try await withTalkback(fixture) { feed in
            #expect(feed.poll(for: FakeMaster.agent).after == 0)
            await deliver([Self.command(1, .cancel, task: 1, epoch: 2),  // an earlier lease of task 1: not this run
                           Self.command(2, .cancel, task: 1, epoch: 3),
                           Self.command(3, .drop, task: 2, epoch: 1)], to: feed)
            #expect(feed.poll(for: FakeMaster.agent).after == 3)
        }
        #expect(cancelled.received == [SIGTERM])
        #expect(await fixture.workload.stopReason(TaskID(rawValue: 1)) == .cancelled)
        #expect(dropped.received == [SIGTERM])
        #expect(await fixture.workload.stopReason(TaskID(rawValue: 2)) == .dropped)
        #expect(untouched.received.isEmpty)
        #expect(await fixture.workload.stopReason(TaskID(rawValue: 3)) == nil)
    }

    /// `give_back` (work stealing): a prefetched lease still waiting for room goes back as a released
    /// finish, no attempt used; one that runs is kept and not signalled.
    @Test func giveBackReleasesAWaitingPrefetchedLeaseAndKeepsARunningOne() async throws {
        let fixture = AgentFixture(slots: 1, prefetch: .fixed(1))
        defer { fixture.close() }
        let running = try await fixture.running(AgentFixture.lease(1, epoch: 1))
        let waiting = AgentFixture.lease(2, epoch: 4, prefetched: true)
        await fixture.workload.add(waiting)
        let runner = Task { await fixture.runner(waiting).run() }
        try await withTalkback(fixture) { feed in
            await deliver([Self.command(1, .giveBack, task: 2, epoch: 3),  // an older lease of task 2: not this one
                           Self.command(2, .giveBack, task: 1, epoch: 1),
                           Self.command(3, .giveBack, task: 2, epoch: 4)], to: feed)
        }
        await runner.value
        let reports = await fixture.outbox.batch()
        #expect(reports.finished.map(\.task) == [waiting.task])
        #expect(reports.finished.first?.report.outcome == .released)
        #expect(reports.finished.first?.report.epoch == waiting.epoch)
        #expect(reports.finished.first?.report.reason == StopReason.givenBack.rawValue)
        #expect(reports.started.isEmpty, "it never started")
        #expect(fixture.launcher.launched.waiting.map(\.spec.task) == [TaskID(rawValue: 1)], "nothing was launched for it")
        #expect(running.received.isEmpty, "the running one is kept")
        #expect(await fixture.workload.stopReason(TaskID(rawValue: 1)) == nil)
    }

    /// Drain stops claiming, undrain resumes it; commands delivered again (at-least-once: a held
    /// exchange and a report's exchange both brought them) are not applied again.
    @Test func drainStopsClaimingAndUndrainResumesItOncePerCommand() async throws {
        let fixture = AgentFixture(slots: 2)
        defer { fixture.close() }
        #expect(await fixture.workload.claimRequest(wait: 0) != nil)
        try await withTalkback(fixture) { feed in
            await deliver([Self.command(1, .drain)], to: feed)
            #expect(feed.poll(for: FakeMaster.agent).after == 1)
            #expect(await fixture.workload.claimRequest(wait: 0) == nil)
            await deliver([Self.command(2, .undrain)], to: feed)
            #expect(await fixture.workload.claimRequest(wait: 0)?.slots == 2)
            await deliver([Self.command(1, .drain)], to: feed)  // delivered again
            await deliver([Self.command(2, .undrain), Self.command(3, .ping)], to: feed)  // partly again
            #expect(feed.applied == 3)
            #expect(await fixture.workload.claimRequest(wait: 0) != nil)
        }
    }

    /// Commands that ask nothing of this agent (a ping, a cancel of a task it does not hold, an
    /// update with nothing in it) are acknowledged and change nothing; the cursor survives a restart.
    @Test func commandsForNothingHereAreAcknowledgedAndIgnored() async throws {
        let fixture = AgentFixture(slots: 2)
        defer { fixture.close() }
        let process = try await fixture.running(AgentFixture.lease(1))
        try await withTalkback(fixture) { feed in
            await deliver([Self.command(1, .ping), Self.command(2, .cancel, task: 99, epoch: 1),
                           Self.command(3, .cancel), Self.command(4, .update)], to: feed)
            #expect(feed.poll(for: FakeMaster.agent).after == 4)
        }
        #expect(process.received.isEmpty)
        #expect(await fixture.workload.stopReason(TaskID(rawValue: 1)) == nil)
        #expect(await fixture.workload.total == fixture.config.resources)
        // A restarted agent asks from where it was; under another id (enrolled again), from the start.
        let restarted = CommandFeed(workDir: fixture.config.workDir, clock: fixture.clock)
        #expect(restarted.poll(for: FakeMaster.agent).after == 4)
        #expect(restarted.poll(for: AgentID(rawValue: 8)).after == 0)
    }

    @Test func updateSetsTheTotalsAndShutdownStopsTheAgent() async throws {
        let fixture = AgentFixture(slots: 2)
        defer { fixture.close() }
        let stops = Mutex(0)
        let smaller = ResourceVector(milliCPUs: 500, ram: 1 << 20)
        try await withTalkback(fixture, shutdown: { stops.withLock { $0 += 1 } }) { feed in
            await deliver([Self.command(1, .update, resources: smaller), Self.command(2, .shutdown)], to: feed)
        }
        #expect(await fixture.workload.total == smaller)
        #expect(stops.withLock { $0 } == 1)
    }

    /// A command of a kind this agent does not know (a newer master's) is left out of its batch,
    /// not a failure of the whole batch; the batch's `last` takes the cursor past it.
    @Test func aCommandOfAnUnknownKindIsAcknowledgedAndIgnored() async throws {
        let known = CommandBatch(commands: [Self.command(1, .drain), Self.command(2, .ping), Self.command(3, .undrain)], last: 3)
        let wire = String(decoding: try WireJSON.encoder().encode(ExchangeResponse(talkback: known)), as: UTF8.self)
            .replacingOccurrences(of: #""kind":"ping""#, with: #""kind":"reboot""#)
        #expect(wire.contains("reboot"))
        let read = try #require(try WireJSON.decoder().decode(ExchangeResponse.self, from: Data(wire.utf8)).talkback)
        #expect(read.commands.map(\.seq) == [1, 3])
        #expect(read.last == 3)

        let fixture = AgentFixture()
        defer { fixture.close() }
        try await withTalkback(fixture) { feed in
            await deliver(CommandBatch(commands: [Self.command(1, .drain)], last: 2), to: feed)  // 2: one this agent cannot read
            #expect(feed.applied == 2)
            #expect(feed.poll(for: FakeMaster.agent).after == 2)
            #expect(await fixture.workload.draining)
        }
        #expect(CommandFeed(workDir: fixture.config.workDir, clock: fixture.clock).poll(for: FakeMaster.agent).after == 2)
    }
}
