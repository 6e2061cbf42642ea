import Foundation
@testable import PaddockAgent
import PaddockProtocol
import ServiceLifecycleTestKit
import Testing

/// `--prefetch auto` (the default): a lease per slot held beyond what runs while the last runs were
/// short, about 100 ms of work per slot (two to eight leases) while they were very short, none while
/// they were long.
@Suite(.timeLimit(.minutes(1))) struct PrefetchPolicyTests {
    private static let short: Duration = .milliseconds(300)
    private static let veryShort: Duration = .milliseconds(3)
    private static let long: Duration = .seconds(90)

    @Test func autoPrefetchesOnePerSlotWhileTheMedianOfTheLastRunsIsShort() {
        let auto = PrefetchPolicy.auto
        #expect(auto.count(recentRuns: [], slots: 4) == 0, "a fresh agent knows nothing of its runs yet")
        #expect(auto.count(recentRuns: [Self.short, Self.short], slots: 4) == 0, "two runs are too few to judge")
        #expect(auto.count(recentRuns: [Self.short, Self.short, Self.short], slots: 4) == 4)
        #expect(auto.count(recentRuns: [Self.short, Self.long, Self.short], slots: 2) == 2, "one long run among short ones")
        #expect(auto.count(recentRuns: [Self.veryShort, Self.veryShort, Self.short], slots: 4) == 32, "eight per slot")
        #expect(auto.count(recentRuns: [Self.veryShort, Self.veryShort, Self.short], slots: 16) == 32,
                "two per slot and no more than 32 in all")
        #expect(auto.count(recentRuns: Array(repeating: .milliseconds(25), count: 3), slots: 2) == 8, "100 ms of 25 ms runs")
        #expect(auto.count(recentRuns: Array(repeating: PrefetchPolicy.veryShortRun, count: 3), slots: 1) == 2)
        #expect(auto.count(recentRuns: [Self.veryShort, Self.short, Self.short], slots: 4) == 4)
        #expect(auto.count(recentRuns: [Self.veryShort, Self.veryShort, Self.veryShort], slots: 5_000) == Limits.claimSlots)
        #expect(auto.count(recentRuns: [Self.long, Self.short, Self.long], slots: 2) == 0)
        #expect(auto.count(recentRuns: [PrefetchPolicy.shortRun, PrefetchPolicy.shortRun, PrefetchPolicy.shortRun], slots: 1) == 1,
                "half a second counts as short")
        // Only the last `window` runs count: long ones long ago do not.
        let history = Array(repeating: Self.long, count: 20) + Array(repeating: Self.short, count: PrefetchPolicy.window)
        #expect(auto.count(recentRuns: history, slots: 3) == 3)
        // Runs that became long turn it off again.
        let became = Array(repeating: Self.short, count: 8) + Array(repeating: Self.long, count: 5)
        #expect(auto.count(recentRuns: became, slots: 3) == 0)
        #expect(auto.count(recentRuns: [Self.short, Self.short, Self.short], slots: 5_000) == Limits.claimSlots)
        // A fixed count is what it says, whatever the runs.
        #expect(PrefetchPolicy.fixed(0).count(recentRuns: [Self.short, Self.short, Self.short], slots: 4) == 0)
        #expect(PrefetchPolicy.fixed(7).count(recentRuns: [Self.long], slots: 1) == 7)
    }

    @Test func itIsReadAsAutoOrABoundedCount() {
        #expect(PrefetchPolicy("auto") == .auto)
        #expect(PrefetchPolicy("0") == .fixed(0))
        #expect(PrefetchPolicy(String(Limits.claimSlots)) == .fixed(Limits.claimSlots))
        for bad in ["-1", String(Limits.claimSlots + 1), "", "Auto", "2.5", "two"] {
            #expect(PrefetchPolicy(bad) == nil, "\(bad)")
        }
        #expect(AgentConfig(masterURL: URL(fileURLWithPath: "/"), joinToken: "j", name: "a", workDir: "/tmp",
                            resources: .zero, tags: [], slots: 1).prefetch == .auto, "auto by default")
    }

    /// The workload keeps the last runs: once three ended at once (no time on the fake clock), the claim
    /// that goes with the third one's finish asks for a prefetched lease.
    @Test func anAgentWhoseRunsAreShortAsksForAPrefetchedLeaseInItsNextClaim() async throws {
        let fixture = AgentFixture(slots: 1, prefetch: .auto)
        defer { fixture.close() }
        try await testGracefulShutdown { trigger in
            let service = fixture.exchangeService
            let running = Task { try await service.run() }
            var exchange = await fixture.master.exchanges.next { ($0.claim?.wait ?? 0) > 0 }
            for run in 1...PrefetchPolicy.fewestRuns {
                #expect(exchange.request.claim?.prefetch == 0, "before run \(run)")
                exchange.answer(ExchangeResponse(leases: [AgentFixture.lease(Int64(run))]))
                let process = await fixture.launcher.launched.take()
                process.exit(.exited(0))
                exchange = await fixture.master.exchanges.next { $0.finished.contains { $0.task == TaskID(rawValue: Int64(run)) } }
            }
            #expect(exchange.request.claim?.prefetch == PrefetchPolicy.mostPerSlot, "runs of no time at all: the most leases per slot")
            exchange.answer(ExchangeResponse())
            fixture.master.acknowledgeReports()
            trigger.triggerGracefulShutdown()
            try await running.value
        }
    }
}
