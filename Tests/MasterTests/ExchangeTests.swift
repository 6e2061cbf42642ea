import Foundation
import PaddockMaster
import PaddockProtocol
import Testing

/// The agent exchange (`POST /v1/agents/{id}/exchange`) through the HTTP API: batched reports, each
/// fenced on its own; leases that run from the claim's commit; prefetched starts confirmed later.
@Suite struct ExchangeTests {
    func claim(slots: Int, prefetch: Int = 0, capacity: Int? = nil) -> ClaimRequest {
        ClaimRequest(slots: slots, wait: 0, prefetch: prefetch, capacity: capacity)
    }

    func done(_ lease: TaskLease, log: String? = nil) -> ExchangeFinish {
        ExchangeFinish(task: lease.task, report: FinishReport(epoch: lease.epoch, outcome: .succeeded, exitCode: 0))
    }

    @Test func claimedLeasesRunFromTheAnswerAndOneExchangeCarriesManyReports() async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("a", cpus: 4)
            let job = try await client.submit(echoJob(tasks: 6))
            let first = try await client.exchange(agent, credential, ExchangeRequest(claim: claim(slots: 4)))
            #expect(first.leases.count == 4)
            #expect(first.leases.allSatisfy { !$0.prefetched && $0.attempt == 1 })
            for lease in first.leases {
                let task = try await client.task(lease.task)
                #expect(task.state == .running, "running from the claim's commit: no start report")
                #expect(task.attempt == 1 && task.startedAt != nil)
                #expect(task.history?.map(\.transition) == [.assign, .start])
            }
            // Four runs end: their output and their ends in one exchange, which also claims the rest.
            let logs = first.leases.map { ExchangeLog(task: $0.task, epoch: $0.epoch, offset: 0, data: Data("out \($0.task)\n".utf8)) }
            let second = try await client.exchange(agent, credential, ExchangeRequest(
                logs: logs, finished: first.leases.map { done($0) }, claim: claim(slots: 4)))
            #expect(second.refused.isEmpty)
            #expect(Set(second.logs.map(\.task)) == Set(first.leases.map(\.task)))
            #expect(second.logs.allSatisfy { $0.size == Int64("out \($0.task)\n".utf8.count) })
            #expect(second.leases.count == 2, "the room the finishes freed was claimed in the same exchange")
            for lease in first.leases {
                #expect(try await client.task(lease.task).state == .succeeded)
                let text = try await client.send(.get, "/v1/tasks/\(lease.task)/logs")
                #expect(String(decoding: text.body, as: UTF8.self) == "out \(lease.task)\n")
            }
            let third = try await client.exchange(agent, credential, ExchangeRequest(finished: second.leases.map { done($0) }))
            #expect(third.refused.isEmpty && third.leases.isEmpty)
            #expect(try await client.job(job.id).state == .succeeded)
        }
    }

    /// A prefetched start beyond the agent's room (the master's count lagging the agent's) is
    /// recorded, not refused (the run has begun), and the agent's claims give it nothing to run
    /// until it is back within its room.
    @Test func aStartBeyondTheAgentsRoomIsRecordedAndItsClaimsWaitForRoom() async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("a", cpus: 1)
            _ = try await client.submit(echoJob(tasks: 4))
            let first = try await client.exchange(agent, credential, ExchangeRequest(claim: claim(slots: 1, prefetch: 1))).leases
            let running = try #require(first.first { !$0.prefetched })
            let prefetched = try #require(first.first { $0.prefetched })
            let answer = try await client.exchange(agent, credential, ExchangeRequest(
                started: [HeldLease(task: prefetched.task, epoch: prefetched.epoch)], claim: claim(slots: 1, capacity: 1)))
            #expect(answer.refused.isEmpty, "\(answer.refused)")
            #expect(answer.leases.isEmpty, "over its room: nothing more to run yet")
            #expect(try await client.task(prefetched.task).state == .running)
            #expect(try await client.task(running.task).state == .running)
            let after = try await client.exchange(agent, credential, ExchangeRequest(
                finished: [done(running), done(prefetched)], claim: claim(slots: 1, capacity: 1)))
            #expect(after.refused.isEmpty)
            #expect(after.leases.count == 1 && after.leases.allSatisfy { !$0.prefetched })
        }
    }

    @Test func aStaleReportIsRefusedAloneAndTheRestApplies() async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("a", cpus: 2)
            _ = try await client.submit(echoJob(tasks: 2))
            let leases = try await client.exchange(agent, credential, ExchangeRequest(claim: claim(slots: 2))).leases
            #expect(leases.count == 2)
            // The first task is cancelled meanwhile: its finish no longer counts, the other's does.
            #expect(try await client.send(.post, "/v1/tasks/\(leases[0].task)/cancel").status == 200)
            let answer = try await client.exchange(agent, credential, ExchangeRequest(
                progress: [ExchangeProgress(task: leases[1].task, epoch: leases[1].epoch, progress: 0.5)],
                finished: [done(leases[0])]))
            #expect(answer.refused.count == 1)
            #expect(answer.refused.first?.task == leases[0].task && answer.refused.first?.kind == .finish)
            #expect(answer.refused.first?.status == 409)
            #expect(try await client.task(leases[0].task).state == .cancelled)
            let other = try await client.task(leases[1].task)
            #expect(other.state == .running && other.progress == 0.5)
        }
    }

    @Test func aFinishWhoseAnswerWasLostIsResentAndCountsOnce() async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("a", cpus: 1)
            _ = try await client.submit(echoJob(tasks: 1))
            let lease = try #require(try await client.exchange(agent, credential,
                                                        ExchangeRequest(claim: claim(slots: 1))).leases.first)
            let log = ExchangeLog(task: lease.task, epoch: lease.epoch, offset: 0, data: Data("hello\n".utf8))
            let report = ExchangeRequest(logs: [log], finished: [done(lease)])
            // The same exchange twice, as an agent resends one whose answer it never got.
            let first = try await client.exchange(agent, credential, report)
            let again = try await client.exchange(agent, credential, report)
            #expect(first.refused.isEmpty && again.refused.isEmpty)
            #expect(again.logs.first?.size == 6, "the resent bytes were already there: skipped")
            let task = try await client.task(lease.task)
            #expect(task.state == .succeeded)
            #expect(task.history?.filter { $0.transition == .succeed }.count == 1)
            let text = try await client.send(.get, "/v1/tasks/\(lease.task)/logs")
            #expect(String(decoding: text.body, as: UTF8.self) == "hello\n")
        }
    }

    @Test func capacityKeepsTwoClaimsInFlightFromOverCommittingSlots() async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("a", cpus: 8)
            _ = try await client.submit(echoJob(tasks: 10, cpus: 0.5))
            // Two claims that each think both slots are free (a long-poll and a pump exchange at once).
            let one = try await client.exchange(agent, credential, ExchangeRequest(claim: claim(slots: 2, capacity: 2)))
            let two = try await client.exchange(agent, credential, ExchangeRequest(claim: claim(slots: 2, capacity: 2)))
            #expect(one.leases.count == 2)
            #expect(two.leases.isEmpty, "the master counted the two busy slots itself")
        }
    }

    /// A steal asks; it does not take. A prefetched lease asked for while its start is on its way
    /// stays with the agent that started it; one it had not started it gives back, and the idle agent
    /// gets it from the queue: no task runs on two agents.
    @Test func aPrefetchedLeaseAskedForWhileItsStartIsInFlightStaysWithItsAgent() async throws {
        try await TestMaster().test { client in
            let (x, xCredential) = try await client.enroll("x", cpus: 1)
            let (y, yCredential) = try await client.enroll("y", cpus: 1)
            _ = try await client.submit(echoJob(tasks: 3))
            // x runs one and prefetches two.
            let held = try await client.exchange(x, xCredential, ExchangeRequest(claim: claim(slots: 1, prefetch: 2)))
            let running = try #require(held.leases.first { !$0.prefetched })
            let prefetched = held.leases.filter(\.prefetched)
            #expect(prefetched.count == 2)
            for lease in prefetched { #expect(try await client.task(lease.task).state == .assigned) }
            // y finds nothing queued: x is asked to give back one of its backlog (the newest), nothing moves.
            let asking = try await client.exchange(y, yCredential, ExchangeRequest(claim: claim(slots: 1)))
            #expect(asking.leases.isEmpty)
            let asked = try await client.send(.get, "/v1/agents/\(x)/commands", token: xCredential).decode(CommandBatch.self)
                .commands.filter { $0.kind == .giveBack }
            let wanted = try #require(prefetched.first { $0.task == asked.first?.task })
            #expect(asked.count == 1 && wanted.task == prefetched.map(\.task).max())
            // Meanwhile x finished its run and started the one asked for: its start, output and finish
            // count (x keeps it and ignores the ask).
            let answer = try await client.exchange(x, xCredential, ExchangeRequest(
                started: [wanted.held],
                logs: [ExchangeLog(task: wanted.task, epoch: wanted.epoch, offset: 0, data: Data("x\n".utf8))],
                finished: [done(running)]))
            #expect(answer.refused.isEmpty, "\(answer.refused)")
            #expect(try await client.task(running.task).state == .succeeded)
            let kept = try await client.task(wanted.task)
            #expect(kept.state == .running && kept.agent == x, "x's run stands")
            let text = try await client.send(.get, "/v1/tasks/\(wanted.task)/logs")
            #expect(String(decoding: text.body, as: UTF8.self) == "x\n")
            // y asks again: the other prefetched lease, which x had not started, comes back and goes to y.
            let other = try #require(prefetched.first { $0.task != wanted.task })
            #expect(try await client.exchange(y, yCredential, ExchangeRequest(claim: claim(slots: 1))).leases.isEmpty)
            let givenBack = try await client.exchange(x, xCredential, ExchangeRequest(finished: [ExchangeFinish(
                task: other.task, report: FinishReport(epoch: other.epoch, outcome: .released, exitCode: nil,
                                                       reason: "given back: an idle agent has room for it"))]))
            #expect(givenBack.refused.isEmpty)
            let taken = try await client.exchange(y, yCredential, ExchangeRequest(claim: claim(slots: 1)))
            #expect(taken.leases.map(\.task) == [other.task])
            let otherView = try await client.task(other.task)
            #expect(otherView.state == .running && otherView.agent == y)
        }
    }

    @Test func aHeldLongPollIsSupersededByTheAgentsNextExchange() async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("a", cpus: 1)
            let started = ContinuousClock.now
            // The agent has something to report while its long-poll waits: the master answers the held
            // one (with no lease). Reports are sent until it does (the first may arrive before it waits).
            let answer = try await withThrowingTaskGroup(of: ExchangeResponse?.self) { group in
                group.addTask {
                    try await client.exchange(agent, credential,
                                       ExchangeRequest(claim: ClaimRequest(slots: 1, wait: 30, capacity: 1)))
                }
                group.addTask {
                    while !Task.isCancelled {
                        try await Task.sleep(for: .milliseconds(200))
                        _ = try await client.exchange(agent, credential, ExchangeRequest(claim: claim(slots: 1, capacity: 1)))
                    }
                    return nil
                }
                let first = try await group.next() ?? nil
                group.cancelAll()
                return first
            }
            #expect(answer?.leases.isEmpty == true)
            #expect(ContinuousClock.now - started < .seconds(25), "answered well before its 30 s wait")
        }
    }

    @Test func badExchangesAreRefusedWithAClearError() async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("a")
            let (other, _) = try await client.enroll("b")
            for body in [#"{"claim": {"slots": 1, "capacity": -1}}"#, #"{"logs": [{"task": "t1", "epoch": 1, "offset": -5, "data": ""}]}"#,
                         #"{"progress": [{"task": "t1", "epoch": 1, "progress": 2}]}"#, #"{"finish": []}"#] {
                let reply = try await client.sendText(.post, "/v1/agents/\(agent)/exchange", token: credential, body)
                #expect(reply.status == 400, "\(body)")
                #expect(reply.error?.code != nil)
            }
            let foreign = try await client.send(.post, "/v1/agents/\(other)/exchange", token: credential, json: ExchangeRequest())
            #expect(foreign.status == 403)
            let huge = ExchangeRequest(logs: [ExchangeLog(task: TaskID(rawValue: 1), epoch: LeaseEpoch(1), offset: 0,
                                                          data: Data(count: 5 << 20))])
            let tooLarge = try await client.send(.post, "/v1/agents/\(agent)/exchange", token: credential, json: huge)
            #expect(tooLarge.status == 413)
        }
    }
}
