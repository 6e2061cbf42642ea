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

    /// The test's own connection, in a transaction that holds one job's row (or what `holding`'s
    /// statement took) until `open`.
    struct Gate {
        let connection: PostgresConnection
        let logger: Logger

        /// Runs `body` with the row of `job` held, and a second master on the fixture's database;
        /// closes both however `body` ends.
        static func holding(_ job: JobID, _ fixture: StoreFixture, _ body: (Gate, SQLStore) async throws -> Void) async throws {
            try await holding(taking: "SELECT id FROM jobs WHERE id = \(job.rawValue) FOR NO KEY UPDATE", fixture, body)
        }

        /// Runs `body` with what `statement` locks held, and a second master on the fixture's database.
        static func holding(taking statement: String, _ fixture: StoreFixture,
                            _ body: (Gate, SQLStore) async throws -> Void) async throws {
            var logger = Logger(label: "test.unblock-race")
            logger.logLevel = .warning
            let second = try await fixture.second()
            let gate = Gate(connection: try await PostgresConnections.connect(try PostgresLocation(url: fixture.location), id: 99,
                                                                              logger: logger), logger: logger)
            do {
                _ = try await gate.run("BEGIN")
                _ = try await gate.run(statement)
                try await body(gate, second)
            } catch {
                try? await gate.connection.close()
                await second.close()
                throw error
            }
            try? await gate.connection.close()
            await second.close()
        }

        func run(_ sql: String) async throws -> PostgresRowSequence {
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        }

        /// Sessions of this database waiting for a lock.
        func waiting() async throws -> Int {
            // The activity view is read once per transaction unless its snapshot is cleared.
            _ = try await run("SELECT pg_stat_clear_snapshot()")
            var count = 0
            for try await row in try await run("""
                SELECT COUNT(*)::int8 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
                """) { count = try row.decode(Int.self) }
            return count
        }

        /// Waits until `sessions` wait for a lock, at most `bound` (under the masters' 5 s lock_timeout,
        /// after which a commit would give up); true if they did.
        func untilWaiting(_ sessions: Int, within bound: Duration) async throws -> Bool {
            let deadline = ContinuousClock.now + bound
            while try await waiting() < sessions {
                guard ContinuousClock.now < deadline else { return false }
                try await Task.sleep(for: .milliseconds(10))
            }
            return true
        }

        func open() async throws { _ = try await run("ROLLBACK") }
    }

    /// A job of one task `true` named `name`, run after `after`.
    func oneTask(_ name: String, after: [JobID] = []) -> JobSubmission {
        var job = JobSubmission(name: name, tasks: [TaskSpec(name: name, command: ["true"])])
        job.after = after
        return job
    }

    func enroll(_ store: SQLStore, _ name: String) async throws -> AgentID {
        try await store.enroll(EnrollRequest(name: name, resources: ResourceVector(cpus: 4, ram: 8 << 30), tags: [], version: "t"),
                               credential: "cred-" + name, now: now)
    }

    func claimOne(_ store: SQLStore, _ agent: AgentID) async throws -> [TaskLease] {
        var order = ClaimOrder(agent: agent, slots: 1, leaseUntil: later, now: now)
        order.capacity = 1
        order.startAtOnce = true
        return try await store.claim(order).leases
    }

    func finishing(_ store: SQLStore, _ agent: AgentID, _ lease: TaskLease) -> Task<ExchangeOutcome, any Error> {
        Task {
            try await store.exchange(agent: agent, ExchangeRequest(finished: [
                ExchangeFinish(task: lease.task, report: FinishReport(epoch: lease.epoch, outcome: .succeeded, exitCode: 0)),
            ]), claim: nil, leaseUntil: later, now: now)
        }
    }

    /// Two agents on two masters each hold one of the first two tasks of `job` and finish it at the
    /// same moment; then `dependent`'s task must be queued.
    func race(_ fixture: StoreFixture, job: JobView, dependent: @escaping @Sendable (SQLStore) async throws -> TaskID) async throws {
        let first = fixture.store
        let agents = [try await enroll(first, "a"), try await enroll(first, "b")]
        let leases = try await claimOne(first, agents[0]) + claimOne(first, agents[1])
        let ids = try #require(job.taskIDs)
        try #require(leases.map(\.task).sorted() == Array(ids.prefix(2)))
        let waiting = try await dependent(first)
        #expect(try await first.task(waiting, history: false).state == .blocked)

        try await Gate.holding(job.id, fixture) { gate, second in
            let exchanges = [finishing(first, agents[0], leases[0]), finishing(second, agents[1], leases[1])]
            // Both wait, each for a lock.
            #expect(try await gate.untilWaiting(2, within: .seconds(4)), "both exchanges wait")
            try await gate.open()
            for exchange in exchanges { #expect(try await exchange.value.response.refused.isEmpty) }
        }
        for id in ids.prefix(2) { #expect(try await first.task(id, history: false).state == .succeeded) }
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
            try #require(try await store.submit(oneTask("z", after: [job.id]), owner: "o", now: now).taskIDs?.first)
        }
    }

    /// A job submitted to run after one whose last task is finishing on another master right then.
    @Test func aJobSubmittedAfterAJobWhoseLastTaskIsFinishingIsUnblocked() async throws {
        let fixture = try await StoreFixture.make(.postgres)
        let first = fixture.store
        let agent = try await enroll(first, "a")
        let job = try await first.submit(oneTask("y"), owner: "o", now: now)
        let lease = try #require(try await claimOne(first, agent).first)
        var submitted: JobView?
        try await Gate.holding(job.id, fixture) { gate, second in
            let finish = finishing(first, agent, lease)
            // The finish has looked and waits at its commit.
            #expect(try await gate.untilWaiting(1, within: .seconds(4)), "the finish waits at its commit")
            let submit = Task {
                try await second.submit(oneTask("z", after: [job.id]), owner: "o", now: now)
            }
            // The submission waits for the finish (without its lock it is done at once, and nothing
            // here waits for it: half a second, then the commit goes on either way).
            _ = try await gate.untilWaiting(2, within: .milliseconds(500))
            try await gate.open()
            #expect(try await finish.value.response.refused.isEmpty)
            submitted = try await submit.value
        }
        let waitingTask = try #require(submitted?.taskIDs?.first)
        #expect(try await first.task(waitingTask, history: false).state == .queued)
    }

    /// A cancelled task retried on one master while another finishes its prerequisite: the finish
    /// looked before the retry made it blocked, and the retry must not look before the finish commits.
    func retryRace(_ fixture: StoreFixture, prerequisiteJob: JobID, waiting: TaskID) async throws {
        let first = fixture.store
        let agent = try await enroll(first, "a")
        _ = try await first.cancelTask(waiting, now: now)
        let lease = try #require(try await claimOne(first, agent).first)
        try await Gate.holding(prerequisiteJob, fixture) { gate, second in
            let finish = finishing(first, agent, lease)
            #expect(try await gate.untilWaiting(1, within: .seconds(4)), "the finish waits at its commit")
            let retry = Task { try await second.retryTask(waiting, now: now) }
            // The retry waits for the finish (without its lock it looks at once; half a second, then
            // the finish's commit goes on either way).
            _ = try await gate.untilWaiting(2, within: .milliseconds(500))
            try await gate.open()
            #expect(try await finish.value.response.refused.isEmpty)
            _ = try await retry.value
        }
        #expect(try await first.task(lease.task, history: false).state == .succeeded)
        #expect(try await first.task(waiting, history: false).state == .queued)
    }

    @Test func aTaskRetriedWhileItsPrerequisiteFinishesIsUnblocked() async throws {
        let fixture = try await StoreFixture.make(.postgres)
        let job = try await fixture.store.submit(JobSubmission(name: "x", tasks: [
            TaskSpec(name: "p", command: ["true"]), TaskSpec(name: "d", command: ["true"], dependsOn: ["p"]),
        ]), owner: "o", now: now)
        try await retryRace(fixture, prerequisiteJob: job.id, waiting: try #require(job.taskIDs?.last))
    }

    @Test func aTaskRetriedWhileTheJobItRunsAfterFinishesIsUnblocked() async throws {
        let fixture = try await StoreFixture.make(.postgres)
        let job = try await fixture.store.submit(oneTask("y"), owner: "o", now: now)
        let waiting = try #require(try await fixture.store.submit(oneTask("z", after: [job.id]), owner: "o", now: now).taskIDs?.first)
        try await retryRace(fixture, prerequisiteJob: job.id, waiting: waiting)
    }

    /// The prerequisite job's task is still queued when the retry looks: it is claimed, run and
    /// finished on another master while the retry waits at its commit. That finish must wait for
    /// the retry (the dependents' lock of its job), then see the task blocked and unblock it.
    @Test func aTaskRetriedWhileTheJobItRunsAfterIsClaimedAndFinishedIsUnblocked() async throws {
        let fixture = try await StoreFixture.make(.postgres)
        let first = fixture.store
        let prerequisite = try await first.submit(oneTask("y"), owner: "o", now: now)
        let job = try await first.submit(oneTask("z", after: [prerequisite.id]), owner: "o", now: now)
        let waiting = try #require(job.taskIDs?.first)
        let agent = try await enroll(first, "a")
        _ = try await first.cancelTask(waiting, now: now)
        // The retry's job row is held: the retry looks (its prerequisite queued), then waits to commit.
        try await Gate.holding(job.id, fixture) { gate, second in
            let retry = Task { try await second.retryTask(waiting, now: now) }
            #expect(try await gate.untilWaiting(1, within: .seconds(4)), "the retry waits at its commit")
            let lease = try #require(try await claimOne(first, agent).first)
            let finish = finishing(first, agent, lease)
            // The finish waits for the retry's lock (without it, it is done at once: half a second,
            // then the retry's commit goes on either way).
            _ = try await gate.untilWaiting(2, within: .milliseconds(500))
            try await gate.open()
            _ = try await retry.value
            #expect(try await finish.value.response.refused.isEmpty)
        }
        #expect(try await first.task(waiting, history: false).state == .queued)
    }

    /// The job it runs after has its task still queued when the submission looks, and that task is
    /// claimed, run and finished on another master while the submission waits to commit (here for
    /// its idempotency key, which the test's connection has inserted and not committed). Its finish
    /// would look for the jobs after it and not see this one. The submission holds that task: the
    /// claim skips it until the submission commits, and its finish then unblocks the job after it.
    @Test func aJobSubmittedAfterAJobWhoseQueuedTaskCouldRunMeanwhileIsUnblocked() async throws {
        let fixture = try await StoreFixture.make(.postgres)
        let first = fixture.store
        let agent = try await enroll(first, "a")
        let prerequisite = try await first.submit(oneTask("y"), owner: "o", now: now)
        let key = """
            INSERT INTO submissions (key, body_hash, job_id, created_at)
            VALUES ('o' || chr(10) || 'k', 'h', 0, \(now.timeIntervalSince1970))
            """
        var submitted: JobView?
        try await Gate.holding(taking: key, fixture) { gate, second in
            let submit = Task {
                try await second.submit(oneTask("z", after: [prerequisite.id]), owner: "o", now: now,
                                        idempotency: SubmissionKey(key: "k", bodyHash: "b"))
            }
            #expect(try await gate.untilWaiting(1, within: .seconds(4)), "the submission waits to store its key")
            // Without the submission's hold the task is leased and finished here, before it commits.
            let leased = try await claimOne(first, agent)
            #expect(leased.isEmpty, "the submission holds the task: claims skip it")
            for lease in leased { #expect(try await finishing(first, agent, lease).value.response.refused.isEmpty) }
            try await gate.open()
            submitted = try await submit.value.job
        }
        // The task the claim skipped runs now.
        if let lease = try await claimOne(first, agent).first {
            #expect(try await finishing(first, agent, lease).value.response.refused.isEmpty)
        }
        #expect(try await first.task(try #require(prerequisite.taskIDs?.first), history: false).state == .succeeded)
        #expect(try await first.task(try #require(submitted?.taskIDs?.first), history: false).state == .queued)
    }

    /// A job's retry whose tasks wait for prerequisites in the opposite order of their own (the first
    /// for the second's prerequisite, the second for the first's), while an exchange holds the first
    /// prerequisite's row and then wants the second's (the test's connection plays it). Taken task by
    /// task, the retry held the second and waited for the first: a deadlock that PostgreSQL broke
    /// after a second. Taken together in id order, it waits for the first holding neither.
    @Test func aJobsRetryTakesItsPrerequisitesLocksInOneOrder() async throws {
        let fixture = try await StoreFixture.make(.postgres)
        let first = fixture.store
        let job = try await first.submit(JobSubmission(name: "x", tasks: [
            TaskSpec(name: "p1", command: ["true"]), TaskSpec(name: "p2", command: ["true"]),
            TaskSpec(name: "d3", command: ["true"], dependsOn: ["p2"]), TaskSpec(name: "d4", command: ["true"], dependsOn: ["p1"]),
        ]), owner: "o", now: now)
        let ids = try #require(job.taskIDs)
        try #require(ids.count == 4)
        for waiting in ids.suffix(2) { _ = try await first.cancelTask(waiting, now: now) }
        try await Gate.holding(taking: "SELECT id FROM tasks WHERE id = \(ids[0].rawValue) FOR NO KEY UPDATE", fixture) { gate, second in
            let retry = Task { try await second.retryJob(job.id, now: now) }
            #expect(try await gate.untilWaiting(1, within: .seconds(4)), "the retry waits for the first prerequisite")
            // The second prerequisite is free: the retry holds nothing while it waits.
            do {
                // Read to its end: PostgreSQL's refusal comes after the rows' description.
                for try await _ in try await gate.run("SELECT id FROM tasks WHERE id = \(ids[1].rawValue) FOR NO KEY UPDATE NOWAIT") {}
            } catch {
                Issue.record("the retry holds the second prerequisite while it waits for the first: \(String(reflecting: error))")
            }
            try await gate.open()
            _ = try await retry.value
        }
        for waiting in ids.suffix(2) { #expect(try await first.task(waiting, history: false).state == .blocked) }
    }
}
