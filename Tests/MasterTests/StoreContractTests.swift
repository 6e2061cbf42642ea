import Foundation
import PaddockMaster
import PaddockProtocol
import Testing

/// The store contract: every behaviour of `Store`, run on SQLite and on a real PostgreSQL
/// (one parameterised suite). Where several masters matter, a second store on the same
/// database plays the second master.
@Suite struct StoreContractTests {
    let now = Date()
    var later: Date { now.addingTimeInterval(600) }

    func agent(_ store: SQLStore, _ name: String, cpus: Double = 4, tags: [String] = []) async throws -> AgentID {
        try await store.enroll(EnrollRequest(name: name, resources: ResourceVector(cpus: cpus, ram: 8 << 30), tags: tags,
                                             version: "t"), credential: "cred-" + name, now: now)
    }

    func job(_ store: SQLStore, _ count: Int, name: String = "job", maxAttempts: Int = 2) async throws -> JobView {
        try await store.submit(JobSubmission(name: name, maxAttempts: maxAttempts, tasks: (0..<count).map {
            TaskSpec(name: "t\($0)", command: ["true"], requirements: TaskRequirements(resources: ResourceVector(cpus: 1)))
        }), owner: "alice", now: now)
    }

    func status(_ body: () async throws -> Void) async -> Int? {
        do { try await body(); return nil } catch let error as PaddockError { return error.status } catch { return -1 }
    }

    @Test(arguments: Backend.allCases)
    func submitListAndPage(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let submitted = try await store.submit(JobSubmission(name: "render", labels: ["show": "x"], tasks: [
            TaskSpec(name: "a", command: ["echo", "a"]),
            TaskSpec(name: "b", command: ["echo", "b"], dependsOn: ["a"]),
            TaskSpec(name: "c", command: ["echo", "c"], dependsOn: ["a"]),
        ]), owner: "alice", now: now)
        #expect(submitted.taskIDs?.count == 3)
        #expect(submitted.counts[.queued] == 1 && submitted.counts[.blocked] == 2)
        #expect(try await store.job(submitted.id).labels == ["show": "x"])
        let first = try await store.tasks(TaskFilter(job: submitted.id), page: PageRequest(limit: 2))
        #expect(first.items.map(\.name) == ["a", "b"])
        let next = try #require(first.next.flatMap { Int64($0) })
        let rest = try await store.tasks(TaskFilter(job: submitted.id), page: PageRequest(after: next, limit: 2))
        #expect(rest.items.map(\.name) == ["c"] && rest.next == nil)
        #expect(try await store.tasks(TaskFilter(state: .blocked), page: PageRequest()).items.count == 2)
        let requirements = try await store.queuedRequirements(job: submitted.id)
        #expect(requirements.map(\.1) == [1])
        #expect(try await store.jobs(JobFilter(owner: "alice"), page: PageRequest()).items.map(\.id) == [submitted.id])
        #expect(try await store.jobs(JobFilter(owner: "bob"), page: PageRequest()).items.isEmpty)
        #expect(await status { _ = try await store.job(JobID(rawValue: 999)) } == 404)
        // A job after an unknown one is refused whole: nothing is written.
        var after = JobSubmission(name: "after", tasks: [TaskSpec(name: "x", command: ["true"])])
        after.after = [JobID(rawValue: 999)]
        #expect(await status { _ = try await store.submit(after, owner: "alice", now: now) } == 400)
        #expect(try await store.jobs(JobFilter(), page: PageRequest()).items.count == 1)
    }

    /// A submission's answer is built from what it inserted, not read back: it must say what reading
    /// the job back says, and its queued requirements what `queuedRequirements` counts.
    @Test(arguments: Backend.allCases)
    func theSubmissionsAnswerIsTheJobAsReadBack(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let gpu = TaskRequirements(resources: ResourceVector(cpus: 2, ram: 1 << 30, gpus: 1), tags: ["gpu", "linux"])
        var submission = JobSubmission(name: "shot 010", priority: 7, labels: ["show": "x", "seq": "010"], tasks: [
            TaskSpec(name: "a", command: ["true"], requirements: gpu),
            TaskSpec(name: "b", command: ["true"]),
            TaskSpec(name: "c", command: ["true"], requirements: gpu),
            TaskSpec(name: "d", command: ["true"], dependsOn: ["b"]),
        ])
        submission.progressRegex = #"Fra:(\d+)"#
        let outcome = try await store.submit(submission, owner: "alice", now: now, idempotency: nil)
        let encoder = WireJSON.encoder()
        encoder.outputFormatting = [.sortedKeys]
        let readBack = try await store.job(outcome.job.id)
        #expect(String(decoding: try encoder.encode(outcome.job), as: UTF8.self)
                == String(decoding: try encoder.encode(readBack), as: UTF8.self))
        #expect(outcome.job.progressRegex == readBack.progressRegex && outcome.job.progressRegex != nil)
        #expect(outcome.job.counts[.queued] == 3 && outcome.job.counts[.blocked] == 1 && outcome.job.state == .queued)
        let queued = try #require(outcome.queued)
        let counted = try await store.queuedRequirements(job: outcome.job.id)
        #expect(queued.map(\.0) == counted.map(\.0) && queued.map(\.1) == counted.map(\.1))
        #expect(Set(queued.map(\.1)) == [1, 2])
    }

    @Test(arguments: Backend.allCases)
    func bigSubmissionKeepsEveryTaskAndDependency(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        // More rows than one INSERT batch, each task after the one before.
        let specs = (0..<450).map { TaskSpec(name: "t\($0)", command: ["true"], dependsOn: $0 == 0 ? [] : ["t\($0 - 1)"]) }
        let view = try await store.submit(JobSubmission(name: "chain", tasks: specs), owner: "a", now: now)
        #expect(view.counts[.queued] == 1 && view.counts[.blocked] == 449)
        let ids = try #require(view.taskIDs)
        #expect(Set(ids).count == 450)
        let last = try await store.task(ids[449], history: false)
        #expect(last.name == "t449" && last.state == .blocked)
    }

    @Test(arguments: Backend.allCases)
    func enrollAuthenticateAndReenroll(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let id = try await agent(store, "host1", tags: ["gpu"])
        #expect(try await store.authenticate(credential: "cred-host1")?.id == id)
        #expect(try await store.authenticate(credential: "nope") == nil)
        _ = try await job(store, 1)
        let lease = try #require(try await store.claim(ClaimOrder(agent: id, slots: 1, leaseUntil: later, now: now)).leases.first)
        // The same name enrolling again (with its current credential) is a new process: a new
        // credential, and what it held is requeued.
        let again = try await store.enroll(EnrollRequest(name: "host1", resources: ResourceVector(cpus: 2), tags: [],
                                                         version: "t2", credential: "cred-host1"), credential: "fresh", now: now)
        #expect(again == id)
        #expect(try await store.authenticate(credential: "cred-host1") == nil)
        #expect(try await store.authenticate(credential: "fresh")?.id == id)
        #expect(try await store.task(lease.task, history: false).state == .queued)
        let view = try await store.agent(id)
        #expect(view.version == "t2" && view.resources.total.milliCPUs == 2000)
        #expect(try await store.agents().map(\.id) == [id])
    }

    @Test(arguments: Backend.allCases)
    func leaseLifecycleIsFencedByEpoch(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let a = try await agent(store, "a")
        let b = try await agent(store, "b")
        _ = try await job(store, 1)
        let lease = try #require(try await store.claim(ClaimOrder(agent: a, slots: 4, leaseUntil: later, now: now)).leases.first)
        #expect(try await store.claim(ClaimOrder(agent: b, slots: 4, leaseUntil: later, now: now)).leases.isEmpty)
        let stale = LeaseEpoch(lease.epoch.rawValue + 1)
        #expect(await status { _ = try await store.start(task: lease.task, agent: a, epoch: stale, leaseUntil: later, now: now) } == 409)
        #expect(await status { _ = try await store.start(task: lease.task, agent: b, epoch: lease.epoch, leaseUntil: later, now: now) } == 409)
        #expect(try await store.start(task: lease.task, agent: a, epoch: lease.epoch, leaseUntil: later, now: now).state == .running)
        // A resent start answers the same.
        #expect(try await store.start(task: lease.task, agent: a, epoch: lease.epoch, leaseUntil: later, now: now).state == .running)
        try await store.progress(task: lease.task, agent: a, epoch: lease.epoch, progress: 0.5, leaseUntil: later, now: now)
        #expect(try await store.task(lease.task, history: false).progress == 0.5)
        // An exit code is whatever the agent saw: 64-bit in both stores.
        let report = FinishReport(epoch: lease.epoch, outcome: .succeeded, exitCode: 1 << 40)
        let done = try await store.finish(task: lease.task, agent: a, report: report, now: now)
        #expect(done.state == .succeeded && done.exitCode == 1 << 40)
        // Finishing is idempotent under the same epoch; nothing is recorded twice.
        #expect(try await store.finish(task: lease.task, agent: a, report: report, now: now).state == .succeeded)
        let history = try #require(try await store.task(lease.task, history: true).history)
        #expect(history.map(\.transition) == [.assign, .start, .succeed])
        #expect(await status {
            _ = try await store.finish(task: lease.task, agent: a, report: FinishReport(epoch: stale, outcome: .failed, exitCode: 1), now: now)
        } == 409)
    }

    @Test(arguments: Backend.allCases)
    func theStoreRefusesASecondLeaseUnderOneEpoch(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let a = try await agent(store, "a")
        _ = try await job(store, 1)
        let lease = try #require(try await store.claim(ClaimOrder(agent: a, slots: 1, leaseUntil: later, now: now)).leases.first)
        // Whatever the code above it does, the schema itself holds one lease per task and epoch.
        await #expect(throws: (any Error).self) {
            try await store.engine.write { db in
                try db.execute(sql: """
                    INSERT INTO task_events (task_id, at, transition, from_state, to_state, agent_id, epoch)
                    VALUES (?, 0, 'assign', 'queued', 'assigned', ?, ?)
                    """, arguments: [lease.task.rawValue, a.rawValue, lease.epoch.rawValue])
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func sweepRequeuesAnExpiredLeaseOnceEvenWithTwoMastersSweeping(_ backend: Backend) async throws {
        let fixture = try await StoreFixture.make(backend)
        let store = fixture.store
        let other = try await fixture.second()
        let a = try await agent(store, "a")
        let submitted = try await job(store, 6, maxAttempts: 3)
        let leases = try await store.claim(ClaimOrder(agent: a, slots: 6, leaseUntil: now.addingTimeInterval(1), now: now)).leases
        #expect(leases.count == 4)  // 4 CPUs, 1 each
        for lease in leases.prefix(2) {
            _ = try await store.start(task: lease.task, agent: a, epoch: lease.epoch, leaseUntil: now.addingTimeInterval(1), now: now)
        }
        let sweepAt = now.addingTimeInterval(5)
        async let one = store.sweep(now: sweepAt, silentSince: sweepAt)
        async let two = other.sweep(now: sweepAt, silentSince: sweepAt)
        let results = try await [one, two]
        let third = try await store.sweep(now: sweepAt, silentSince: sweepAt)
        #expect(results.map(\.tasksRequeued).reduce(0, +) + third.tasksRequeued == 4)
        #expect(third.tasksRequeued == 0 || results.allSatisfy { $0.tasksRequeued == 0 })
        #expect(try await store.agent(a).state == .offline)
        for lease in leases {
            let events = try #require(try await store.task(lease.task, history: true).history)
            #expect(events.filter { $0.transition == .expireLease }.count == 1)
        }
        #expect(try await store.job(submitted.id).counts[.queued] == 6)
        // A run that started used an attempt.
        #expect(try await store.task(leases[0].task, history: false).attempt == 1)
    }

    @Test(arguments: Backend.allCases)
    func aLeaseTheAgentNeverGotGoesBackWithoutUsingAnAttempt(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let a = try await agent(store, "a")
        _ = try await job(store, 2)
        var order = ClaimOrder(agent: a, slots: 2, leaseUntil: now.addingTimeInterval(30), now: now)
        order.startAtOnce = true
        let leases = try await store.claim(order).leases
        #expect(leases.count == 2)
        // The agent holds the first; the answer that carried the second was lost. Five seconds on, the
        // second may still be on its way: it stays.
        let held = [HeldLease(task: leases[0].task, epoch: leases[0].epoch)]
        let soon = try await store.heartbeat(agent: a, beat: HeartbeatRequest(held: held),
                                             leaseUntil: now.addingTimeInterval(35), now: now.addingTimeInterval(5))
        #expect(soon.released == 0)
        #expect(try await store.task(leases[1].task, history: false).state == .running)
        // Fifteen seconds on it cannot be: it goes back, and the run it never had uses no attempt.
        let later = try await store.heartbeat(agent: a, beat: HeartbeatRequest(held: held),
                                              leaseUntil: now.addingTimeInterval(45), now: now.addingTimeInterval(15))
        #expect(later.released == 1 && later.lost.isEmpty)
        let given = try await store.task(leases[1].task, history: true)
        #expect(given.state == .queued && given.attempt == 0)
        #expect(given.history?.last?.transition == .release)
        #expect(try await store.task(leases[0].task, history: false).state == .running)
    }

    /// With the exchanges numbered, a heartbeat that says which were answered gives back a lease
    /// one of them granted at once, however young, and only those.
    @Test(arguments: Backend.allCases)
    func aLeaseFromAnAnsweredExchangeThatTheAgentLacksGoesBackAtOnce(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let a = try await agent(store, "a")
        _ = try await job(store, 4)
        func claim(_ sequence: Int64, incarnation: Int64 = 7) async throws -> [TaskLease] {
            var order = ClaimOrder(agent: a, slots: 1, leaseUntil: now.addingTimeInterval(30), now: now)
            order.startAtOnce = true
            order.exchange = ExchangeNumber(incarnation: incarnation, sequence: sequence)
            return try await store.claim(order).leases
        }
        // Exchanges 1 and 2 of this process: the agent got 1's lease; 2's answer was lost. Exchange 3
        // is still open, its lease on its way. A lease of an earlier process (incarnation 6) waits
        // for its age, as one of an unnumbered exchange does.
        let first = try #require(try await claim(1).first)
        let lost = try #require(try await claim(2).first)
        let onItsWay = try #require(try await claim(3).first)
        let earlier = try #require(try await claim(2, incarnation: 6).first)
        let held = [HeldLease(task: first.task, epoch: first.epoch)]
        // A second on, all four are young; a heartbeat that says exchange 1 alone was answered gives back none.
        let early = try await store.heartbeat(agent: a, beat: HeartbeatRequest(
            held: held, answered: ExchangeNumber(incarnation: 7, sequence: 1)),
                                              leaseUntil: now.addingTimeInterval(31), now: now.addingTimeInterval(1))
        #expect(early.released == 0)
        let beat = try await store.heartbeat(agent: a, beat: HeartbeatRequest(
            held: held, answered: ExchangeNumber(incarnation: 7, sequence: 2)),
                                             leaseUntil: now.addingTimeInterval(31), now: now.addingTimeInterval(1))
        #expect(beat.released == 1 && beat.lost.isEmpty)
        let given = try await store.task(lost.task, history: true)
        #expect(given.state == .queued && given.attempt == 0)
        #expect(given.history?.last?.transition == .release)
        for kept in [first, onItsWay, earlier] {
            #expect(try await store.task(kept.task, history: false).state == .running)
        }
        // A (late) heartbeat of the earlier process gives back that process's lease, none of this one's.
        let other = try await store.heartbeat(agent: a, beat: HeartbeatRequest(
            held: held, answered: ExchangeNumber(incarnation: 6, sequence: 9)),
                                              leaseUntil: now.addingTimeInterval(31), now: now.addingTimeInterval(1))
        #expect(other.released == 1)
        #expect(try await store.task(earlier.task, history: false).state == .queued)
        #expect(try await store.task(onItsWay.task, history: false).state == .running)
    }

    @Test(arguments: Backend.allCases)
    func heartbeatRenewsHeldLeasesAndReportsLostOnes(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let a = try await agent(store, "a")
        _ = try await job(store, 2)
        let leases = try await store.claim(ClaimOrder(agent: a, slots: 2, leaseUntil: now.addingTimeInterval(1), now: now)).leases
        #expect(leases.count == 2)
        let bogus = HeldLease(task: leases[1].task, epoch: LeaseEpoch(99))
        let (state, lost, _) = try await store.heartbeat(agent: a, beat: HeartbeatRequest(held: [
            HeldLease(task: leases[0].task, epoch: leases[0].epoch), bogus]), leaseUntil: later, now: now)
        #expect(state == .online && lost == [bogus])
        let swept = try await store.sweep(now: now.addingTimeInterval(5), silentSince: now.addingTimeInterval(-60))
        #expect(swept.tasksRequeued == 1)  // only the lease not renewed
        #expect(try await store.task(leases[0].task, history: false).state == .assigned)
        // An authoritative heartbeat gives back what the agent does not hold.
        _ = try await store.heartbeat(agent: a, beat: HeartbeatRequest(held: [], authoritative: true), leaseUntil: later, now: now)
        #expect(try await store.task(leases[0].task, history: false).state == .queued)
        #expect(await status { _ = try await store.heartbeat(agent: AgentID(rawValue: 77), beat: HeartbeatRequest(held: []),
                                                             leaseUntil: later, now: now) } == 404)
    }

    @Test(arguments: Backend.allCases)
    func logsAppendByOffsetSkipResendsAndRefuseGaps(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let a = try await agent(store, "a")
        _ = try await job(store, 1)
        let lease = try #require(try await store.claim(ClaimOrder(agent: a, slots: 1, leaseUntil: later, now: now)).leases.first)
        #expect(await status { _ = try await store.appendLog(task: lease.task, agent: a, epoch: lease.epoch, offset: 0, data: Data("x".utf8)) } == 409)
        _ = try await store.start(task: lease.task, agent: a, epoch: lease.epoch, leaseUntil: later, now: now)
        #expect(try await store.appendLog(task: lease.task, agent: a, epoch: lease.epoch, offset: 0, data: Data("hello ".utf8)) == 6)
        #expect(try await store.appendLog(task: lease.task, agent: a, epoch: lease.epoch, offset: 3, data: Data("lo world".utf8)) == 11)
        #expect(await status { _ = try await store.appendLog(task: lease.task, agent: a, epoch: lease.epoch, offset: 20, data: Data("z".utf8)) } == 409)
        let page = try await store.readLog(task: lease.task, attempt: nil, after: 0, limit: 100)
        #expect(String(decoding: page.chunks.reduce(Data(), +), as: UTF8.self) == "hello world")
        #expect(page.live && page.attempt == 1)
        let tail = try await store.readLog(task: lease.task, attempt: 1, after: 6, limit: 100)
        #expect(String(decoding: tail.chunks.reduce(Data(), +), as: UTF8.self) == "world")
        // From inside a chunk (a follower asking again from the bytes it has): the rest of that chunk on.
        let inside = try await store.readLog(task: lease.task, attempt: 1, after: 8, limit: 100)
        #expect(String(decoding: inside.chunks.reduce(Data(), +), as: UTF8.self) == "rld")
    }

    /// A rerun (after a failure with attempts left, a release, or a retry that gives every attempt
    /// back) writes its own log: its first bytes are never taken for resends of an earlier run's.
    @Test(arguments: Backend.allCases)
    func everyRunOfATaskHasItsOwnLog(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let a = try await agent(store, "a")
        _ = try await job(store, 1, maxAttempts: 2)
        func run(_ text: String, outcome: TaskOutcome) async throws -> TaskID {
            var order = ClaimOrder(agent: a, slots: 1, leaseUntil: later, now: now)
            order.startAtOnce = true
            let lease = try #require(try await store.claim(order).leases.first)
            #expect(try await store.appendLog(task: lease.task, agent: a, epoch: lease.epoch, offset: 0, data: Data(text.utf8))
                    == Int64(text.utf8.count))
            _ = try await store.finish(task: lease.task, agent: a, report: FinishReport(epoch: lease.epoch, outcome: outcome,
                                                                                         exitCode: outcome == .failed ? 1 : nil),
                                       now: now)
            return lease.task
        }
        func log(_ task: TaskID, _ run: Int?) async throws -> String {
            let page = try await store.readLog(task: task, attempt: run, after: 0, limit: 100)
            return String(decoding: page.chunks.reduce(Data(), +), as: UTF8.self)
        }
        let task = try await run("first run, failed\n", outcome: .failed)     // attempt 1 used, one left
        _ = try await run("second: released\n", outcome: .released)          // gives its attempt back
        _ = try await run("third, failed for good\n", outcome: .failed)      // attempt 2: no more
        #expect(try await store.task(task, history: false).state == .failed)
        _ = try await store.retryTask(task, now: now)                         // every attempt back
        _ = try await run("fourth\n", outcome: .succeeded)
        let view = try await store.task(task, history: false)
        #expect(view.runs == 4 && view.attempt == 1 && view.state == .succeeded)
        #expect(try await log(task, nil) == "fourth\n")
        #expect(try await log(task, 1) == "first run, failed\n")
        #expect(try await log(task, 2) == "second: released\n")
        #expect(try await log(task, 3) == "third, failed for good\n")
    }

    /// One grace per outage: the time nobody swept is given back to live leases, once; a master
    /// starting while leases are being swept (a master restarting in a loop beside a healthy one)
    /// gives nothing, so a dead host's leases still run out on time.
    @Test(arguments: Backend.allCases)
    func aGraceIsGivenOncePerOutageNotPerRestart(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let a = try await agent(store, "a")
        _ = try await job(store, 1)
        let start = store.clock.now()
        let lease = try #require(try await store.claim(ClaimOrder(agent: a, slots: 1, leaseUntil: start.addingTimeInterval(10),
                                                                   now: start)).leases.first)
        // Last swept two minutes ago: the lease gets those two minutes back (less one sweep period), once.
        _ = try await store.sweep(now: start.addingTimeInterval(-120), silentSince: start.addingTimeInterval(-600))
        let given = try #require(try await store.grantGrace(leaseTimeout: 60, now: start))
        #expect(abs(given - 119) < 0.001, "given \(given)")
        #expect(try await store.grantGrace(leaseTimeout: 60, now: start.addingTimeInterval(0.5)) == nil)
        #expect(try await store.sweep(now: start.addingTimeInterval(11), silentSince: start.addingTimeInterval(-600)).tasksRequeued == 0)
        // Swept just now: a restart gives nothing, and the lease runs out when its time is up.
        #expect(try await store.grantGrace(leaseTimeout: 60, now: start.addingTimeInterval(11.5)) == nil)
        #expect(try await store.sweep(now: start.addingTimeInterval(10 + given - 1), silentSince: start.addingTimeInterval(-600))
                .tasksRequeued == 0)
        #expect(try await store.sweep(now: start.addingTimeInterval(10 + given + 1), silentSince: start.addingTimeInterval(-600))
                .tasksRequeued == 1)
        #expect(try await store.task(lease.task, history: false).state == .queued)
    }

    /// A submission under an idempotency key is stored once: the same key and body answer the job
    /// stored the first time, another body under that key is refused, and keys are kept a day.
    @Test(arguments: Backend.allCases)
    func anIdempotencyKeyMakesOneJob(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let job = JobSubmission(name: "once", tasks: [TaskSpec(name: "a", command: ["true"])])
        let key = SubmissionKey(key: "k-1", bodyHash: "aaaa")
        let first = try await store.submit(job, owner: "alice", now: now, idempotency: key)
        #expect(!first.replayed)
        let again = try await store.submit(job, owner: "alice", now: now.addingTimeInterval(5), idempotency: key)
        #expect(again.replayed && again.job.id == first.job.id && again.job.taskIDs == first.job.taskIDs)
        #expect(await status {
            _ = try await store.submit(job, owner: "alice", now: now, idempotency: SubmissionKey(key: "k-1", bodyHash: "bbbb"))
        } == 422)
        #expect(try await store.jobs(JobFilter(), page: PageRequest()).items.count == 1)
        // Without a key every submission is a job; a day later the key names nothing any more.
        _ = try await store.submit(job, owner: "alice", now: now)
        let later = try await store.submit(job, owner: "alice", now: now.addingTimeInterval(SubmissionKey.lifetime + 60),
                                           idempotency: key)
        #expect(!later.replayed && later.job.id != first.job.id)
        #expect(try await store.jobs(JobFilter(), page: PageRequest()).items.count == 3)
        // Keys are each owner's: another token's "k-1", with another body, is a job of its own, and
        // neither finds nor blocks alice's.
        let other = JobSubmission(name: "bob's", tasks: [TaskSpec(name: "b", command: ["true"])])
        let bobs = try await store.submit(other, owner: "bob", now: now.addingTimeInterval(SubmissionKey.lifetime + 70),
                                          idempotency: SubmissionKey(key: "k-1", bodyHash: "cccc"))
        #expect(!bobs.replayed && bobs.job.id != later.job.id && bobs.job.owner == "bob")
        let alicesAgain = try await store.submit(job, owner: "alice", now: now.addingTimeInterval(SubmissionKey.lifetime + 80),
                                                 idempotency: key)
        #expect(alicesAgain.replayed && alicesAgain.job.id == later.job.id)
    }

    @Test(arguments: Backend.allCases)
    func cancellingTellsTheAgentThroughItsCommandQueue(_ backend: Backend) async throws {
        let fixture = try await StoreFixture.make(backend)
        let store = fixture.store
        let other = try await fixture.second()
        let a = try await agent(store, "a")
        let submitted = try await job(store, 3)
        let leases = try await store.claim(ClaimOrder(agent: a, slots: 1, leaseUntil: later, now: now)).leases
        _ = try await store.start(task: leases[0].task, agent: a, epoch: leases[0].epoch, leaseUntil: later, now: now)
        // Cancelled through one master, read through the other.
        let cancelled = try await other.cancelJob(submitted.id, archive: false, now: now)
        #expect(cancelled.state == .cancelled && cancelled.counts[.cancelled] == 3)
        let commands = try await store.commands(for: a, after: 0, now: now)
        #expect(commands.map(\.kind) == [.cancel] && commands.first?.task == leases[0].task)
        let seq = try await other.sendCommand(to: a, CommandRequest(kind: .ping, ttl: 60), now: now)
        #expect(seq == 2)
        #expect(try await store.commands(for: a, after: 1, now: now).map(\.seq) == [2])
        #expect(try await store.commands(for: a, after: 0, now: now.addingTimeInterval(120)).map(\.kind) == [.cancel])
        #expect(await status { _ = try await store.cancelJob(submitted.id, archive: false, now: now) } == 409)
        let archived = try await store.cancelJob(submitted.id, archive: true, now: now)
        #expect(archived.id == submitted.id)
        #expect(try await store.jobs(JobFilter(), page: PageRequest()).items.isEmpty)
        let retried = try await store.retryJob(submitted.id, now: now)
        #expect(retried.counts[.queued] == 3)
    }

    @Test(arguments: Backend.allCases)
    func pauseResumeAndAllOrNothingBulkPatches(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let a = try await agent(store, "a")
        let submitted = try await job(store, 3)
        let ids = try #require(submitted.taskIDs)
        let lease = try #require(try await store.claim(ClaimOrder(agent: a, slots: 1, leaseUntil: later, now: now)).leases.first)
        _ = try await store.start(task: lease.task, agent: a, epoch: lease.epoch, leaseUntil: later, now: now)
        let paused = try await store.pauseJob(submitted.id, kill: true, now: now)
        #expect(paused.state == .paused && paused.counts[.queued] == 3)
        #expect(try await store.claim(ClaimOrder(agent: a, slots: 4, leaseUntil: later, now: now)).leases.isEmpty)
        #expect(try await store.commands(for: a, after: 0, now: now).map(\.kind) == [.drop])
        #expect(try await store.resumeJob(submitted.id).state == .queued)
        #expect(await status { _ = try await store.resumeJob(submitted.id) } == 409)
        // One unknown id: nothing changes.
        #expect(await status { _ = try await store.patchTasks(TaskBulkPatch(ids: ids + [TaskID(rawValue: 999)], state: .cancelled), now: now) } == 404)
        #expect(try await store.job(submitted.id).counts[.queued] == 3)
        #expect(try await store.patchTasks(TaskBulkPatch(ids: [ids[0], ids[1]], priority: 7, state: .cancelled), now: now) == 2)
        #expect(try await store.task(ids[0], history: false).priority == 7)
        #expect(try await store.retryTask(ids[0], now: now).state == .queued)
        #expect(try await store.cancelTask(ids[2], now: now).state == .cancelled)
        #expect(try await store.patchJob(submitted.id, JobPatch(priority: 5, labels: ["k": "v"])).priority == 5)
    }

    @Test(arguments: Backend.allCases)
    func dependenciesUnblockOnSuccessAndCancelOnFailure(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let a = try await agent(store, "a")
        let submitted = try await store.submit(JobSubmission(name: "diamond", maxAttempts: 1, tasks: [
            TaskSpec(name: "top", command: ["true"]),
            TaskSpec(name: "left", command: ["true"], dependsOn: ["top"]),
            TaskSpec(name: "right", command: ["true"], dependsOn: ["top"]),
            TaskSpec(name: "bottom", command: ["true"], dependsOn: ["left", "right"]),
        ]), owner: "a", now: now)
        let ids = try #require(submitted.taskIDs)
        func run(_ outcome: TaskOutcome) async throws -> [TaskID] {
            let leases = try await store.claim(ClaimOrder(agent: a, slots: 4, leaseUntil: later, now: now)).leases
            for lease in leases {
                _ = try await store.start(task: lease.task, agent: a, epoch: lease.epoch, leaseUntil: later, now: now)
                _ = try await store.finish(task: lease.task, agent: a, report: FinishReport(
                    epoch: lease.epoch, outcome: lease.task == ids[2] ? outcome : .succeeded, exitCode: 0), now: now)
            }
            return leases.map(\.task)
        }
        #expect(try await run(.failed) == [ids[0]])
        #expect(Set(try await run(.failed)) == [ids[1], ids[2]])
        // right failed for good: bottom, waiting for it, is cancelled with that reason.
        let bottom = try await store.task(ids[3], history: false)
        #expect(bottom.state == .cancelled && bottom.reason?.contains("\(ids[2])") == true)
    }

    @Test(arguments: Backend.allCases)
    func failuresBlocklistAnAgentForThatJob(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let a = try await agent(store, "a")
        let submitted = try await job(store, 3, maxAttempts: 5)
        for _ in 0..<2 {
            let lease = try #require(try await store.claim(ClaimOrder(agent: a, slots: 1, blocklistAfter: 2, leaseUntil: later, now: now)).leases.first)
            _ = try await store.start(task: lease.task, agent: a, epoch: lease.epoch, leaseUntil: later, now: now)
            _ = try await store.finish(task: lease.task, agent: a, report: FinishReport(epoch: lease.epoch, outcome: .failed, exitCode: 1), now: now)
        }
        #expect(try await store.blocklist(job: submitted.id, threshold: 2).map(\.agent) == [a])
        #expect(try await store.claim(ClaimOrder(agent: a, slots: 1, blocklistAfter: 2, leaseUntil: later, now: now)).leases.isEmpty)
        try await store.clearBlocklist(job: submitted.id)
        #expect(try await store.claim(ClaimOrder(agent: a, slots: 1, blocklistAfter: 2, leaseUntil: later, now: now)).leases.count == 1)
    }

    @Test(arguments: Backend.allCases)
    func idleAgentStealsPrefetchedWork(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let a = try await agent(store, "a", cpus: 1)
        let b = try await agent(store, "b", cpus: 1)
        _ = try await job(store, 5)
        let first = try await store.claim(ClaimOrder(agent: a, slots: 1, prefetch: 4, leaseUntil: later, now: now))
        #expect(first.leases.count == 5 && first.leases.filter(\.prefetched).count == 4)
        // b's claim asks a for one (what b has room for); nothing changes hands yet.
        let asking = try await store.claim(ClaimOrder(agent: b, slots: 1, leaseUntil: later, now: now))
        #expect(asking.stolen == 1 && asking.leases.isEmpty)
        let commands = try await store.commands(for: a, after: 0, now: now)
        #expect(commands.map(\.kind) == [.giveBack])
        let wanted = try #require(first.leases.first { $0.task == commands.first?.task })
        #expect(wanted.prefetched && commands.first?.epoch == wanted.epoch)
        // A lease is not asked for twice while the command lives, and at most half the backlog (2 of 4)
        // is asked for at once.
        #expect(try await store.claim(ClaimOrder(agent: b, slots: 1, leaseUntil: later, now: now)).stolen == 1)
        #expect(try await store.claim(ClaimOrder(agent: b, slots: 1, leaseUntil: later, now: now)).stolen == 0)
        let asked = try await store.commands(for: a, after: 0, now: now)
        #expect(asked.map(\.kind) == [.giveBack, .giveBack] && Set(asked.compactMap(\.task)).count == 2)
        // a gives it back (it had not started it): queued again, b's next claim takes it.
        _ = try await store.finish(task: wanted.task, agent: a, report: FinishReport(epoch: wanted.epoch, outcome: .released,
                                                                               exitCode: nil, reason: "given back"), now: now)
        let taken = try await store.claim(ClaimOrder(agent: b, slots: 1, leaseUntil: later, now: now))
        #expect(taken.leases.map(\.task) == [wanted.task])
    }

    @Test(arguments: Backend.allCases)
    func agentsExceptionsMetricsAndSummary(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let a = try await agent(store, "a")
        let view = try await store.patchAgent(a, AgentPatch(drain: true, tags: ["x"]), now: now)
        #expect(view.state == .draining && view.tags == ["x"])
        #expect(try await store.commands(for: a, after: 0, now: now).map(\.kind) == [.drain, .update])
        for index in 0..<3 {
            _ = try await store.addException(agent: a, ExceptionReport(type: "E\(index)", message: "m", context: ["k": "v"]), now: now)
        }
        let page = try await store.exceptions(agent: a, page: PageRequest(limit: 2))
        #expect(page.items.map(\.type) == ["E0", "E1"] && page.next != nil)
        let metrics = HostMetrics(at: now, cpu: .init(busyPercent: 50, perCore: [50, 50], cores: 2),
                                  load: .init(one: 1, five: 1, fifteen: 1),
                                  memory: .init(total: 8 << 30, used: 1 << 30, available: 7 << 30, swapTotal: 0, swapUsed: 0),
                                  disk: .init(path: "/", total: 100, free: 90), gpus: [])
        _ = try await store.heartbeat(agent: a, beat: HeartbeatRequest(held: [], metrics: metrics), leaseUntil: later, now: now)
        #expect(try await store.metricsSeries(agent: a, since: now.addingTimeInterval(-1)).count == 1)
        #expect(try await store.agent(a).metrics != nil)
        _ = try await job(store, 2)
        let summary = try await store.summary()
        #expect(summary.jobs == 1 && summary.tasks[.queued] == 2 && summary.agents[.draining] == 1)
        try await store.forgetAgent(a, now: now)
        #expect(try await store.agents().isEmpty)
        try await store.ping()
    }

    @Test(arguments: Backend.allCases)
    func aRestartedMasterExtendsLiveLeases(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let a = try await agent(store, "a")
        _ = try await job(store, 1)
        _ = try await store.claim(ClaimOrder(agent: a, slots: 1, leaseUntil: now.addingTimeInterval(1), now: now))
        try await store.extendLeases(until: Date().addingTimeInterval(60))
        #expect(try await store.sweep(now: now.addingTimeInterval(5), silentSince: now.addingTimeInterval(-60)).tasksRequeued == 0)
    }
}
