import Foundation
import PaddockMaster
import PaddockProtocol
import Testing

/// Prefetch and stealing, dependencies, blocklists and fair share, through the HTTP API (in-process).
@Suite struct SchedulingTests {
    func start(_ client: TestMaster.Client, _ lease: TaskLease, _ credential: String) async throws -> Int {
        try await client.send(.post, "/v1/tasks/\(lease.task)/start", token: credential, json: TaskReport(epoch: lease.epoch)).status
    }

    func finish(_ client: TestMaster.Client, _ lease: TaskLease, _ credential: String, _ outcome: TaskOutcome = .succeeded)
        async throws -> TaskView {
        try await client.send(.post, "/v1/tasks/\(lease.task)/finish", token: credential,
                              json: FinishReport(epoch: lease.epoch, outcome: outcome, exitCode: outcome == .succeeded ? 0 : 1))
            .decode(TaskView.self)
    }

    func claim(_ client: TestMaster.Client, _ agent: AgentID, _ credential: String, slots: Int, prefetch: Int = 0)
        async throws -> [TaskLease] {
        try await client.send(.post, "/v1/agents/\(agent)/claim", token: credential,
                              json: ClaimRequest(slots: slots, wait: 0, prefetch: prefetch)).decode(ClaimResponse.self).leases
    }

    /// An idle agent's claim asks the backlogged agent to give back prefetched tasks: it gives back
    /// one it has not started (the idle agent's next claim takes it there) and keeps one it started
    /// meanwhile (its start counts): no task goes to two agents.
    @Test func idleAgentAsksTheBacklogBackAndGetsWhatTheVictimHadNotStarted() async throws {
        try await TestMaster().test { client in
            let (x, xKey) = try await client.enroll("x", cpus: 1)
            let (y, yKey) = try await client.enroll("y", cpus: 1)
            _ = try await client.submit(echoJob(tasks: 6))
            let xLeases = try await claim(client, x, xKey, slots: 1, prefetch: 5)
            #expect(xLeases.count == 6)
            #expect(xLeases.filter(\.prefetched).count == 5)
            #expect(try await start(client, xLeases[0], xKey) == 200)
            // x says it started a second one beside the first, on one CPU (its view of its room and the
            // master's differ for a moment): the run has begun, the master records it (a refusal would
            // stop a run that may be over already: it would run twice).
            #expect(try await start(client, xLeases[1], xKey) == 200)
            #expect(try await client.task(xLeases[1].task).state == .running)

            // y finds nothing queued: x is asked for half its backlog (the newest), nothing moves yet.
            #expect(try await claim(client, y, yKey, slots: 1).isEmpty)
            let commands = try await client.send(.get, "/v1/agents/\(x)/commands", token: xKey).decode(CommandBatch.self)
            let asked = commands.commands.filter { $0.kind == .giveBack }
            #expect(asked.count == 1, "as many as y has room for")
            let wanted = try #require(asked.first.flatMap { command in xLeases.first { $0.task == command.task } })
            #expect(wanted.prefetched && asked.first?.epoch == wanted.epoch, "only backlog is asked for, never what runs")
            #expect(try await client.task(wanted.task).agent == x, "still x's until x gives it back")
            // Asked again by the next idle claim, the same lease is not asked for twice.
            #expect(try await claim(client, y, yKey, slots: 1).isEmpty)
            let again = try await client.send(.get, "/v1/agents/\(x)/commands", token: xKey).decode(CommandBatch.self)
            #expect(again.commands.filter { $0.kind == .giveBack && $0.task == wanted.task }.count == 1)

            // x had not started it: it gives it back, no attempt used, and y's claim takes it.
            let released = try await client.send(.post, "/v1/tasks/\(wanted.task)/finish", token: xKey,
                                                 json: FinishReport(epoch: wanted.epoch, outcome: .released, exitCode: nil,
                                                                    reason: "given back: an idle agent has room for it"))
            #expect(released.status == 200)
            let taken = try await claim(client, y, yKey, slots: 1)
            #expect(taken.map(\.task) == [wanted.task])
            #expect(try await client.task(wanted.task).attempt == 0)
            let history = try #require(try await client.task(wanted.task).history)
            #expect(history.map(\.transition) == [.assign, .release, .assign])
            #expect(try await start(client, taken[0], yKey) == 200)
            #expect(try await finish(client, taken[0], yKey).state == .succeeded)

            // Another ask; this time x started the lease first (its start was on its way): x keeps it.
            _ = try await finish(client, xLeases[0], xKey)
            #expect(try await claim(client, y, yKey, slots: 1).isEmpty)
            let second = try await client.send(.get, "/v1/agents/\(x)/commands", token: xKey).decode(CommandBatch.self)
                .commands.filter { $0.kind == .giveBack && $0.task != wanted.task }
            let kept = try #require(second.first.flatMap { command in xLeases.first { $0.task == command.task } })
            #expect(try await start(client, kept, xKey) == 200)
            #expect(try await client.task(kept.task).state == .running)
            #expect(try await client.task(kept.task).agent == x)
            #expect(try await finish(client, kept, xKey).state == .succeeded)
        }
    }

    @Test func diamondRunsInOrderAndAFailureCancelsItsDependents() async throws {
        try await TestMaster().test { client in
            let (agent, key) = try await client.enroll("a", cpus: 8)
            func diamond(_ name: String) -> JobSubmission {
                var job = JobSubmission(name: name, maxAttempts: 1, tasks: [
                    TaskSpec(name: "a", command: ["true"]),
                    TaskSpec(name: "b", command: ["true"], dependsOn: ["a"]),
                    TaskSpec(name: "c", command: ["true"], dependsOn: ["a"]),
                    TaskSpec(name: "d", command: ["true"], dependsOn: ["b", "c"]),
                ])
                job.priority = 0
                return job
            }
            let job = try await client.submit(diamond("ok"))
            #expect(job.counts[.blocked] == 3 && job.counts[.queued] == 1)
            var order: [String] = []
            while order.count < 4 {
                let leases = try await claim(client, agent, key, slots: 8)
                #expect(!leases.isEmpty)
                for lease in leases { _ = try await start(client, lease, key); order.append(lease.name) }
                for lease in leases { _ = try await finish(client, lease, key) }
            }
            #expect(order.first == "a" && order.last == "d" && Set(order[1...2]) == ["b", "c"])

            let failing = try await client.submit(diamond("fails"))
            let a = try #require(try await claim(client, agent, key, slots: 8).first)
            _ = try await start(client, a, key)
            #expect(try await finish(client, a, key, .failed).state == .failed)
            let tasks = try await client.send(.get, "/v1/tasks?job=\(failing.id)").decode(Page<TaskView>.self).items
            #expect(tasks.map(\.state) == [.failed, .cancelled, .cancelled, .cancelled])
            #expect(tasks.dropFirst().allSatisfy { $0.reason?.contains("dependency") == true })
            #expect(try await client.job(failing.id).state == .failed)
        }
    }

    @Test func cyclesAndUnknownNamesAreRefusedAndWriteNothing() async throws {
        try await TestMaster().test { client in
            let cycle = JobSubmission(name: "cycle", tasks: [
                TaskSpec(name: "a", command: ["true"], dependsOn: ["c"]),
                TaskSpec(name: "b", command: ["true"], dependsOn: ["a"]),
                TaskSpec(name: "c", command: ["true"], dependsOn: ["b"]),
            ])
            let reply = try await client.send(.post, "/v1/jobs", json: cycle)
            #expect(reply.status == 400)
            #expect(reply.error?.message.contains("cycle") == true)
            let unknown = JobSubmission(name: "unknown", tasks: [TaskSpec(name: "a", command: ["true"], dependsOn: ["zz"])])
            #expect(try await client.send(.post, "/v1/jobs", json: unknown).status == 400)
            var after = echoJob()
            after.after = [JobID(rawValue: 77)]
            #expect(try await client.send(.post, "/v1/jobs", json: after).status == 400)
            #expect(try await client.jobCount() == 0)
        }
    }

    @Test func aJobAfterAnotherWaitsForIt() async throws {
        try await TestMaster().test { client in
            let (agent, key) = try await client.enroll("a", cpus: 8)
            let first = try await client.submit(echoJob("first", tasks: 2))
            var second = echoJob("second", tasks: 2)
            second.after = [first.id]
            let then = try await client.submit(second)
            #expect(then.counts[.blocked] == 2)
            let leases = try await claim(client, agent, key, slots: 8)
            #expect(Set(leases.map(\.job)) == [first.id])
            for lease in leases { _ = try await start(client, lease, key); _ = try await finish(client, lease, key) }
            let next = try await claim(client, agent, key, slots: 8)
            #expect(next.count == 2 && Set(next.map(\.job)) == [then.id])
        }
    }

    @Test func agentWhereAJobKeepsFailingIsBlocklistedForIt() async throws {
        try await TestMaster().test { client in
            let (bad, badKey) = try await client.enroll("bad", cpus: 1)
            var job = echoJob("flaky", tasks: 1)
            job.maxAttempts = 10
            let submitted = try await client.submit(job)
            for _ in 0..<3 {
                let lease = try #require(try await claim(client, bad, badKey, slots: 1).first)
                _ = try await start(client, lease, badKey)
                #expect(try await finish(client, lease, badKey, .failed).state == .queued)
            }
            #expect(try await claim(client, bad, badKey, slots: 1).isEmpty, "blocklisted for this job")
            let view = try await client.job(submitted.id)
            #expect(view.blocklist == [BlocklistEntry(agent: bad, failures: 3)])
            #expect(view.warnings.contains { $0.contains("blocklisted") })
            // Other jobs still run there.
            _ = try await client.submit(echoJob("other"))
            let other = try #require(try await claim(client, bad, badKey, slots: 1).first)
            _ = try await start(client, other, badKey)
            _ = try await finish(client, other, badKey)
            // Cleared, it may run the flaky job again.
            let cleared = try await client.send(.patch, "/v1/jobs/\(submitted.id)", json: JobPatch(clearBlocklist: true))
            #expect(try cleared.decode(JobView.self).blocklist == [])
            #expect(try await claim(client, bad, badKey, slots: 1).map(\.job) == [submitted.id])
        }
    }

    @Test func ownersShareTheFarmAtEqualPriority() async throws {
        try await TestMaster().test { client in
            let (agent, key) = try await client.enroll("a", cpus: 2)
            var big = echoJob("big", tasks: 200)
            big.owner = "alice"
            let bigJob = try await client.submit(big)
            var small = echoJob("small", tasks: 5)
            small.owner = "bob"
            let smallJob = try await client.submit(small)
            var started: [JobID] = []
            while started.filter({ $0 == bigJob.id }).count < 50 {
                let leases = try await claim(client, agent, key, slots: 2)
                #expect(!leases.isEmpty)
                for lease in leases { started.append(lease.job); _ = try await start(client, lease, key) }
                for lease in leases { _ = try await finish(client, lease, key) }
            }
            #expect(started.filter { $0 == smallJob.id }.count == 5,
                    "bob's 5 tasks all start before alice's 50th")
        }
    }
}

/// Placement warnings read the agents as kept a moment ago (`AgentCapacityCache`), and say a
/// warning only as a fresh read has them.
@Suite struct PlacementWarningTests {
    @Test func anAgentEnrolledAMomentAgoCountsAtOnce() async throws {
        let fixture = try TestMaster()
        try await fixture.test { client in
            _ = try await client.enroll("small", cpus: 2)
            let big = echoJob("big", cpus: 16)
            let first = try await client.submit(big)
            #expect(first.warnings.count == 1)
            #expect(first.warnings.first?.contains("fit no agent") == true)
            // Within the second the capacities are kept: the new agent is still counted.
            _ = try await client.enroll("large", cpus: 32)
            let second = try await client.submit(big)
            #expect(second.warnings.isEmpty, "\(second.warnings)")
            // And a job every agent fits is said nothing about.
            #expect(try await client.submit(echoJob("small", cpus: 1)).warnings.isEmpty)
        }
    }
}
