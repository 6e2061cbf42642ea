import Foundation
import Logging
@testable import PaddockMaster
import PaddockProtocol
import PostgresNIO
import Testing

/// Two masters finishing the last two prerequisites of one dependent at the same moment, on one
/// PostgreSQL database: whichever commits second must see the other's finish and unblock it. Each
/// looks before it commits, and a look before the other's commit sees the other's task unfinished.
/// A connection of the test's own holds the prerequisites' job rows, which both commits wait for
/// (the job counters are updated at commit): both have looked by then.
@Suite struct PostgresUnblockRaceTests {
    let now = Date()
    var later: Date { now.addingTimeInterval(600) }

    func order(_ agent: AgentID, capacity: Int) -> ClaimOrder {
        var order = ClaimOrder(agent: agent, slots: 1, leaseUntil: later, now: now)
        order.capacity = capacity
        order.startAtOnce = true
        return order
    }

    func finish(_ lease: TaskLease) -> ExchangeFinish {
        ExchangeFinish(task: lease.task, report: FinishReport(epoch: lease.epoch, outcome: .succeeded, exitCode: 0))
    }

    @Test func twoMastersFinishingTheLastPrerequisitesAtOnceUnblockTheirDependents() async throws {
        let fixture = try await StoreFixture.make(.postgres)
        let first = fixture.store, second = try await fixture.second()
        var logger = Logger(label: "test.unblock-race")
        logger.logLevel = .warning
        let agents = try await ["a", "b"].asyncMap { name in
            try await first.enroll(EnrollRequest(name: name, resources: ResourceVector(cpus: 4, ram: 8 << 30), tags: [], version: "t"),
                                   credential: "cred-" + name, now: now)
        }
        // Task dependencies: `both` waits for p1 and p2. Job dependencies: `z` runs after job Y.
        let x = try await first.submit(JobSubmission(name: "x", tasks: [
            TaskSpec(name: "p1", command: ["true"]), TaskSpec(name: "p2", command: ["true"]),
            TaskSpec(name: "both", command: ["true"], dependsOn: ["p1", "p2"]),
        ]), owner: "o", now: now)
        let xIDs = try #require(x.taskIDs)
        var leases: [[TaskLease]] = [[], []]
        for (index, agent) in agents.enumerated() { leases[index] += try await first.claim(order(agent, capacity: 1)).leases }
        let y = try await first.submit(JobSubmission(name: "y", tasks: [
            TaskSpec(name: "y1", command: ["true"]), TaskSpec(name: "y2", command: ["true"]),
        ]), owner: "o", now: now)
        var afterY = JobSubmission(name: "z", tasks: [TaskSpec(name: "z", command: ["true"])])
        afterY.after = [y.id]
        let z = try await first.submit(afterY, owner: "o", now: now)
        for (index, agent) in agents.enumerated() { leases[index] += try await first.claim(order(agent, capacity: 2)).leases }
        // Each agent holds one prerequisite of `both` and one task of job Y.
        let yIDs = try #require(y.taskIDs)
        for held in leases {
            try #require(held.count == 2)
            try #require(Set(held.map(\.task)).intersection(xIDs[0...1]).count == 1)
            try #require(Set(held.map(\.task)).intersection(yIDs).count == 1)
        }

        let gate = try await PostgresConnections.connect(try PostgresLocation(url: fixture.location), id: 99, logger: logger)
        func run(_ sql: String) async throws -> PostgresRowSequence {
            try await gate.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        }
        do {
            _ = try await run("BEGIN")
            _ = try await run("SELECT id FROM jobs WHERE id IN (\(x.id.rawValue), \(y.id.rawValue)) FOR NO KEY UPDATE")
            let exchanges = [(first, agents[0], leases[0]), (second, agents[1], leases[1])].map { store, agent, held in
                Task {
                    try await store.exchange(agent: agent, ExchangeRequest(finished: held.map(finish)), claim: nil,
                                             leaseUntil: later, now: now)
                }
            }
            // Both transactions wait: at their commits for the gate, or one for the other's locks.
            let deadline = ContinuousClock.now + .seconds(60)
            while true {
                // The activity view is read once per transaction unless its snapshot is cleared.
                _ = try await run("SELECT pg_stat_clear_snapshot()")
                let rows = try await run("""
                    SELECT COUNT(*)::int8 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
                    """)
                var waiting = 0
                for try await row in rows { waiting = try row.decode(Int.self) }
                if waiting >= 2 { break }
                guard ContinuousClock.now < deadline else {
                    Issue.record("timed out waiting for both exchanges to wait")
                    break
                }
                try await Task.sleep(for: .milliseconds(10))
            }
            _ = try await run("ROLLBACK")
            for exchange in exchanges { #expect(try await exchange.value.response.refused.isEmpty) }
        } catch {
            try? await gate.close()
            throw error
        }
        try? await gate.close()

        for id in xIDs[0...1] + yIDs { #expect(try await first.task(id, history: false).state == .succeeded) }
        #expect(try await first.task(xIDs[2], history: false).state == .queued, "the task that waits for p1 and p2")
        #expect(try await first.task(try #require(z.taskIDs?.first), history: false).state == .queued,
                "the job that runs after job Y")
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var values: [T] = []
        for element in self { values.append(try await transform(element)) }
        return values
    }
}
