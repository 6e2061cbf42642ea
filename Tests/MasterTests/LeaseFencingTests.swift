import Foundation
import PaddockMaster
import PaddockProtocol
import Testing

/// The lease and fencing rules of docs/ARCHITECTURE.md §3, through the HTTP API.
@Suite struct LeaseFencingTests {
    @Test func claimLeasesWhatFitsInPriorityOrder() async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("a", cpus: 4)
            _ = try await client.submit(echoJob("low", tasks: 3, cpus: 1))
            var urgent = echoJob("high", tasks: 2, cpus: 2)
            urgent.priority = 10
            let high = try await client.submit(urgent)
            let leases = try await client.claim(agent, credential)
            // 4 cpus: both 2-cpu tasks of the urgent job, nothing else fits.
            #expect(leases.map(\.job) == [high.id, high.id])
            #expect(try await client.claim(agent, credential).isEmpty)
        }
    }

    @Test func staleFinishIsRefusedAndChangesNothing() async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("a")
            let job = try await client.submit(echoJob())
            let lease = try #require(try await client.claim(agent, credential).first)
            #expect(lease.job == job.id)
            let start = try await client.send(.post, "/v1/tasks/\(lease.task)/start", token: credential,
                                              json: TaskReport(epoch: lease.epoch))
            #expect(start.status == 200)

            let stale = FinishReport(epoch: LeaseEpoch(lease.epoch.rawValue - 1), outcome: .succeeded, exitCode: 0)
            let refused = try await client.send(.post, "/v1/tasks/\(lease.task)/finish", token: credential, json: stale)
            #expect(refused.status == 409)
            #expect(refused.error?.code == "stale_epoch")
            let unchanged = try await client.task(lease.task)
            #expect(unchanged.state == .running)
            #expect(unchanged.exitCode == nil)

            let finish = FinishReport(epoch: lease.epoch, outcome: .succeeded, exitCode: 0)
            let first = try await client.send(.post, "/v1/tasks/\(lease.task)/finish", token: credential, json: finish)
            let second = try await client.send(.post, "/v1/tasks/\(lease.task)/finish", token: credential, json: finish)
            #expect(first.status == 200)
            #expect(second.status == 200)
            #expect(try first.decode(TaskView.self).state == .succeeded)
            #expect(try second.decode(TaskView.self).state == .succeeded)
            let history = try #require(try await client.task(lease.task).history)
            #expect(history.filter { $0.transition == .succeed }.count == 1)
        }
    }

    @Test func anotherAgentCannotReportOnMyTask() async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("a")
            let (_, other) = try await client.enroll("b")
            _ = try await client.submit(echoJob())
            let lease = try #require(try await client.claim(agent, credential).first)
            let reply = try await client.send(.post, "/v1/tasks/\(lease.task)/start", token: other,
                                              json: TaskReport(epoch: lease.epoch))
            #expect(reply.status == 409)
            #expect(try await client.task(lease.task).state == .assigned)
            // Nor claim in another agent's name.
            let claim = try await client.send(.post, "/v1/agents/\(agent)/claim", token: other,
                                              json: ClaimRequest(slots: 1, wait: 0))
            #expect(claim.status == 403)
        }
    }

    @Test func failedRunIsRetriedUntilAttemptsRunOut() async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("a")
            var job = echoJob()
            job.maxAttempts = 2
            _ = try await client.submit(job)
            for attempt in 1...2 {
                let lease = try #require(try await client.claim(agent, credential).first)
                #expect(lease.attempt == attempt)
                _ = try await client.send(.post, "/v1/tasks/\(lease.task)/start", token: credential,
                                          json: TaskReport(epoch: lease.epoch))
                let reply = try await client.send(.post, "/v1/tasks/\(lease.task)/finish", token: credential,
                                                  json: FinishReport(epoch: lease.epoch, outcome: .failed, exitCode: 3))
                let task = try reply.decode(TaskView.self)
                #expect(task.state == (attempt < 2 ? .queued : .failed))
                #expect(task.exitCode == 3)
            }
            #expect(try await client.claim(agent, credential).isEmpty)
        }
    }

    @Test func silentAgentLosesItsLeasesToTheSweeper() async throws {
        let master = try TestMaster(leaseTimeout: 1)
        try await master.test { client in
            let (agent, credential) = try await client.enroll("a")
            _ = try await client.submit(echoJob(tasks: 2))
            let leases = try await client.claim(agent, credential)
            #expect(leases.count == 2)
            _ = try await client.send(.post, "/v1/tasks/\(leases[0].task)/start", token: credential,
                                      json: TaskReport(epoch: leases[0].epoch))
            let later = Date().addingTimeInterval(5)
            let result = try await master.master.store.sweep(now: later, silentSince: later.addingTimeInterval(-1))
            #expect(result.agentsMarkedOffline == 1)
            #expect(result.tasksRequeued == 2)
            let running = try await client.task(leases[0].task)
            let assigned = try await client.task(leases[1].task)
            #expect(running.state == .queued && running.attempt == 1)    // the run counted
            #expect(assigned.state == .queued && assigned.attempt == 0)  // never started: no attempt used
            #expect(try await client.send(.get, "/v1/agents/\(agent)").decode(AgentView.self).state == .offline)
            // The old holder's late finish is fenced off.
            let late = try await client.send(.post, "/v1/tasks/\(leases[0].task)/finish", token: credential,
                                             json: FinishReport(epoch: leases[0].epoch, outcome: .succeeded, exitCode: 0))
            #expect(late.status == 409)
        }
    }

    @Test func logsAppendByOffsetWithoutDuplicates() async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("a")
            _ = try await client.submit(echoJob())
            let lease = try #require(try await client.claim(agent, credential).first)
            _ = try await client.send(.post, "/v1/tasks/\(lease.task)/start", token: credential,
                                      json: TaskReport(epoch: lease.epoch))
            let path = "/v1/tasks/\(lease.task)/logs?epoch=\(lease.epoch)"
            #expect(try await client.sendText(.post, path + "&offset=0", token: credential, "hello ").status == 200)
            // A resend overlapping what the master holds: only the new bytes count.
            let ack = try await client.sendText(.post, path + "&offset=0", token: credential, "hello world\n")
            #expect(try ack.decode(LogAck.self).size == 12)
            let gap = try await client.sendText(.post, path + "&offset=100", token: credential, "x")
            #expect(gap.status == 409)
            let log = try await client.send(.get, "/v1/tasks/\(lease.task)/logs")
            #expect(String(decoding: log.body, as: UTF8.self) == "hello world\n")
            let stale = try await client.sendText(.post, "/v1/tasks/\(lease.task)/logs?epoch=99&offset=12",
                                                  token: credential, "late")
            #expect(stale.status == 409)
        }
    }
}
