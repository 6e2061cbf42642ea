import Foundation
import Logging
@testable import PaddockMaster
import PaddockProtocol
import PostgresNIO
import Testing

/// Two masters finishing the last two prerequisites of one dependent at the same moment, on one
/// PostgreSQL database: whichever commits second must see the other's finish and unblock it. Each
/// looks before it commits, and a look before the other's commit sees the other's task unfinished.
/// A connection of the test's own holds the prerequisites' job row, which a commit waits for (the
/// job counters are updated at commit): the first waits there, and without the dependents' locks
/// the second too, both having looked by then; with them, the second waits for the first's lock.
@Suite struct PostgresUnblockRaceTests {
    let now = Date()
    var later: Date { now.addingTimeInterval(600) }

    /// Two agents on two masters each hold one of `prerequisites` (the first tasks of `job`) and finish
    /// it at the same moment; then `dependent`'s task must be queued.
    func race(_ fixture: StoreFixture, job: JobView, prerequisites: Int = 2,
              dependent: @escaping @Sendable (SQLStore) async throws -> TaskID) async throws {
        let first = fixture.store, second = try await fixture.second()
        var logger = Logger(label: "test.unblock-race")
        logger.logLevel = .warning
        var agents: [AgentID] = []
        for name in ["a", "b"] {
            agents.append(try await first.enroll(EnrollRequest(name: name, resources: ResourceVector(cpus: 4, ram: 8 << 30),
                                                               tags: [], version: "t"),
                                                 credential: "cred-" + name, now: now))
        }
        var leases: [TaskLease] = []
        for agent in agents {
            var order = ClaimOrder(agent: agent, slots: 1, leaseUntil: later, now: now)
            order.capacity = 1
            order.startAtOnce = true
            leases += try await first.claim(order).leases
        }
        let ids = try #require(job.taskIDs)
        try #require(leases.map(\.task).sorted() == Array(ids.prefix(prerequisites)))
        let waiting = try await dependent(first)
        #expect(try await first.task(waiting, history: false).state == .blocked)

        let gate = try await PostgresConnections.connect(try PostgresLocation(url: fixture.location), id: 99, logger: logger)
        func run(_ sql: String) async throws -> PostgresRowSequence {
            try await gate.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        }
        do {
            _ = try await run("BEGIN")
            _ = try await run("SELECT id FROM jobs WHERE id = \(job.id.rawValue) FOR NO KEY UPDATE")
            let exchanges = zip([first, second], zip(agents, leases)).map { store, held in
                let (agent, lease) = held
                return Task {
                    try await store.exchange(agent: agent, ExchangeRequest(finished: [
                        ExchangeFinish(task: lease.task, report: FinishReport(epoch: lease.epoch, outcome: .succeeded, exitCode: 0)),
                    ]), claim: nil, leaseUntil: later, now: now)
                }
            }
            // Both wait, each for a lock; within the masters' 5 s lock_timeout (after which a commit
            // gives up and the exchange would fail).
            let deadline = ContinuousClock.now + .seconds(4)
            while true {
                // The activity view is read once per transaction unless its snapshot is cleared.
                _ = try await run("SELECT pg_stat_clear_snapshot()")
                var count = 0
                for try await row in try await run("""
                    SELECT COUNT(*)::int8 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
                    """) { count = try row.decode(Int.self) }
                if count >= 2 { break }
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
            await second.close()
            throw error
        }
        try? await gate.close()
        await second.close()
        for id in ids.prefix(prerequisites) { #expect(try await first.task(id, history: false).state == .succeeded) }
        #expect(try await first.task(waiting, history: false).state == .queued)
    }

    @Test func aTaskWhoseTwoPrerequisitesTwoMastersFinishAtOnceIsUnblocked() async throws {
        let fixture = try await StoreFixture.make(.postgres)
        let job = try await fixture.store.submit(JobSubmission(name: "x", tasks: [
            TaskSpec(name: "p1", command: ["true"]), TaskSpec(name: "p2", command: ["true"]),
            TaskSpec(name: "both", command: ["true"], dependsOn: ["p1", "p2"]),
        ]), owner: "o", now: now)
        try await race(fixture, job: job) { _ in try #require(job.taskIDs?.last) }
    }

    @Test func aJobAfterAJobWhoseLastTwoTasksTwoMastersFinishAtOnceIsUnblocked() async throws {
        let fixture = try await StoreFixture.make(.postgres)
        let job = try await fixture.store.submit(JobSubmission(name: "y", tasks: [
            TaskSpec(name: "y1", command: ["true"]), TaskSpec(name: "y2", command: ["true"]),
        ]), owner: "o", now: now)
        try await race(fixture, job: job) { store in
            var after = JobSubmission(name: "z", tasks: [TaskSpec(name: "z", command: ["true"])])
            after.after = [job.id]
            return try #require(try await store.submit(after, owner: "o", now: now).taskIDs?.first)
        }
    }

    /// A job submitted to run after one whose last task is finishing on another master right then.
    @Test func aJobSubmittedAfterAJobWhoseLastTaskIsFinishingIsUnblocked() async throws {
        let fixture = try await StoreFixture.make(.postgres)
        let first = fixture.store, second = try await fixture.second()
        var logger = Logger(label: "test.unblock-race")
        logger.logLevel = .warning
        let agent = try await first.enroll(EnrollRequest(name: "a", resources: ResourceVector(cpus: 4, ram: 8 << 30), tags: [],
                                                         version: "t"), credential: "cred-a", now: now)
        let job = try await first.submit(JobSubmission(name: "y", tasks: [TaskSpec(name: "y", command: ["true"])]),
                                         owner: "o", now: now)
        var order = ClaimOrder(agent: agent, slots: 1, leaseUntil: later, now: now)
        order.capacity = 1
        order.startAtOnce = true
        let lease = try #require(try await first.claim(order).leases.first)

        let gate = try await PostgresConnections.connect(try PostgresLocation(url: fixture.location), id: 99, logger: logger)
        func run(_ sql: String) async throws -> PostgresRowSequence {
            try await gate.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        }
        func waiting() async throws -> Int {
            _ = try await run("SELECT pg_stat_clear_snapshot()")
            var count = 0
            for try await row in try await run("""
                SELECT COUNT(*)::int8 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
                """) { count = try row.decode(Int.self) }
            return count
        }
        var submitted: JobView?
        do {
            _ = try await run("BEGIN")
            _ = try await run("SELECT id FROM jobs WHERE id = \(job.id.rawValue) FOR NO KEY UPDATE")
            let finish = Task {
                try await first.exchange(agent: agent, ExchangeRequest(finished: [
                    ExchangeFinish(task: lease.task, report: FinishReport(epoch: lease.epoch, outcome: .succeeded, exitCode: 0)),
                ]), claim: nil, leaseUntil: later, now: now)
            }
            // The finish has looked and waits at its commit (within the masters' 5 s lock_timeout).
            let deadline = ContinuousClock.now + .seconds(4)
            while try await waiting() < 1, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            let submit = Task {
                var after = JobSubmission(name: "z", tasks: [TaskSpec(name: "z", command: ["true"])])
                after.after = [job.id]
                return try await second.submit(after, owner: "o", now: now)
            }
            // The submission waits for the finish (or, without the lock, is done at once).
            let started = ContinuousClock.now
            while try await waiting() < 2, ContinuousClock.now < deadline {
                if ContinuousClock.now - started > .milliseconds(500) { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            _ = try await run("ROLLBACK")
            #expect(try await finish.value.response.refused.isEmpty)
            submitted = try await submit.value
        } catch {
            try? await gate.close()
            await second.close()
            throw error
        }
        try? await gate.close()
        await second.close()
        let waitingTask = try #require(submitted?.taskIDs?.first)
        #expect(try await first.task(waitingTask, history: false).state == .queued)
    }
}
