import Foundation
import PaddockMaster
import PaddockProtocol
import Testing

/// The talkback channel through the HTTP API (in-process).
@Suite struct TalkbackTests {
    @Test func longPollReturnsAsSoonAsACommandIsPosted() async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("a")
            let started = ContinuousClock.now
            async let polled = client.send(.get, "/v1/agents/\(agent)/commands?after=0&wait=30", token: credential)
            try await Task.sleep(for: .milliseconds(300))
            let posted = try await client.send(.post, "/v1/agents/\(agent)/commands", json: CommandRequest(kind: .ping))
            #expect(posted.status == 201)
            let batch = try await polled.decode(CommandBatch.self)
            #expect(batch.commands.map(\.kind) == [.ping])
            #expect(batch.last == 1)
            // Answered on the post, not after the 30 s wait.
            #expect(ContinuousClock.now - started < .seconds(20))
        }
    }

    /// An agent's one long-poll: the exchange brings the commands after its talkback cursor, and a
    /// held one (with a claim or without) answers as soon as a command is posted.
    @Test func anExchangeBringsTheCommandsAfterItsCursorAndAHeldOneAnswersWhenOneIsPosted() async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("a")
            for kind in [CommandKind.drain, .undrain] {
                _ = try await client.send(.post, "/v1/agents/\(agent)/commands", json: CommandRequest(kind: kind))
            }
            let all = try await client.exchange(agent, credential, ExchangeRequest(talkback: TalkbackPoll(after: 0)))
            #expect(all.talkback?.commands.map(\.kind) == [.drain, .undrain])
            #expect(all.talkback?.last == 2)
            let none = try await client.exchange(agent, credential, ExchangeRequest(talkback: TalkbackPoll(after: 2)))
            #expect(none.talkback?.commands.isEmpty == true)
            #expect(none.talkback?.last == 2)
            #expect(try await client.exchange(agent, credential, ExchangeRequest()).talkback == nil, "not asked for")

            for (cursor, claim) in [(Int64(2), ClaimRequest(slots: 1, wait: 30)), (3, nil)] {
                let started = ContinuousClock.now
                async let held = client.exchange(agent, credential,
                                                 ExchangeRequest(claim: claim, talkback: TalkbackPoll(after: cursor, wait: 30)))
                try await Task.sleep(for: .milliseconds(300))
                _ = try await client.send(.post, "/v1/agents/\(agent)/commands", json: CommandRequest(kind: .ping))
                let answer = try await held
                #expect(answer.talkback?.commands.map(\.seq) == [cursor + 1], "with a claim: \(claim != nil)")
                #expect(answer.leases.isEmpty)
                // Answered on the post, not after the 30 s wait.
                #expect(ContinuousClock.now - started < .seconds(20))
            }
        }
    }

    /// A held talkback poll ends when the agent's next exchange arrives (a report superseding it:
    /// the agent's one long-poll), and answers the commands it has.
    @Test func aHeldTalkbackPollIsSupersededByTheAgentsNextExchange() async throws {
        let fixture = try TestMaster()
        let wake = fixture.master.wake
        try await fixture.test { client in
            let (agent, credential) = try await client.enroll("a")
            let started = ContinuousClock.now
            async let held = client.exchange(agent, credential, ExchangeRequest(talkback: TalkbackPoll(after: 0, wait: 30)))
            // Held, not only sent: a report that reached the master first would be superseded by it
            // instead (rehearsal 75 had the poll's request reach it after 300 ms on a busy machine).
            let deadline = ContinuousClock.now + .seconds(15)
            while await wake.waiting == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            #expect(await wake.waiting == 1)
            let report = try await client.exchange(agent, credential, ExchangeRequest(talkback: TalkbackPoll(after: 0)))
            #expect(report.talkback?.commands.isEmpty == true)
            let answer = try await held
            #expect(answer.talkback?.commands.isEmpty == true)
            #expect(ContinuousClock.now - started < .seconds(20))
        }
    }

    /// A talkback poll out of bounds is refused with a 400 naming the field, and changes nothing.
    @Test(arguments: [(#"{"talkback":{"after":-1}}"#, "talkback.after"), (#"{"talkback":{"after":0,"wait":1000}}"#, "talkback.wait"),
                      (#"{"talkback":{"after":0,"since":3}}"#, "talkback"), (#"{"talkback":{"after":1.5}}"#, "talkback.after")])
    func aTalkbackPollOutOfBoundsIsRefused(body: String, field: String) async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("a")
            let reply = try await client.sendText(.post, "/v1/agents/\(agent)/exchange", token: credential, body)
            #expect(reply.status == 400, "\(String(decoding: reply.body, as: UTF8.self))")
            #expect(reply.error?.field?.hasPrefix(field) == true, "\(String(decoding: reply.body, as: UTF8.self))")
        }
    }

    @Test func commandsAreOrderedAndResumeAfterTheCursor() async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("a")
            for kind in [CommandKind.drain, .undrain, .ping] {
                _ = try await client.send(.post, "/v1/agents/\(agent)/commands", json: CommandRequest(kind: kind))
            }
            let all = try await client.send(.get, "/v1/agents/\(agent)/commands?after=0", token: credential)
                .decode(CommandBatch.self)
            #expect(all.commands.map(\.kind) == [.drain, .undrain, .ping])
            #expect(all.commands.map(\.seq) == [1, 2, 3])
            let rest = try await client.send(.get, "/v1/agents/\(agent)/commands?after=2", token: credential)
                .decode(CommandBatch.self)
            #expect(rest.commands.map(\.seq) == [3])
            // An expired command is not delivered.
            _ = try await client.send(.post, "/v1/agents/\(agent)/commands", json: CommandRequest(kind: .ping, ttl: 0.2))
            try await Task.sleep(for: .milliseconds(400))
            let after = try await client.send(.get, "/v1/agents/\(agent)/commands?after=3", token: credential)
                .decode(CommandBatch.self)
            #expect(after.commands.isEmpty)
            // Another agent cannot read this agent's commands.
            let (_, other) = try await client.enroll("b")
            #expect(try await client.send(.get, "/v1/agents/\(agent)/commands", token: other).status == 403)
        }
    }

    @Test func cancellingALeasedTaskQueuesACancelForItsAgent() async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("a")
            _ = try await client.submit(echoJob(tasks: 2))
            let leases = try await client.claim(agent, credential)
            let cancelled = try await client.send(.post, "/v1/tasks/\(leases[0].task)/cancel")
            #expect(try cancelled.decode(TaskView.self).state == .cancelled)
            let batch = try await client.send(.get, "/v1/agents/\(agent)/commands", token: credential).decode(CommandBatch.self)
            #expect(batch.commands.count == 1)
            #expect(batch.commands.first?.kind == .cancel)
            #expect(batch.commands.first?.task == leases[0].task)
            #expect(batch.commands.first?.epoch == leases[0].epoch)
            // Its late finish changes nothing.
            let late = try await client.send(.post, "/v1/tasks/\(leases[0].task)/finish", token: credential,
                                             json: FinishReport(epoch: leases[0].epoch, outcome: .succeeded, exitCode: 0))
            #expect(late.status == 409)
            #expect(try await client.task(leases[0].task).state == .cancelled)
        }
    }

    @Test func bulkPatchIsAllOrNothing() async throws {
        try await TestMaster().test { client in
            let job = try await client.submit(echoJob(tasks: 3))
            let ids = try #require(job.taskIDs)
            let bad = try await client.send(.patch, "/v1/tasks", json: TaskBulkPatch(ids: ids + [TaskID(rawValue: 999)], priority: 7))
            #expect(bad.status == 404)
            for id in ids { #expect(try await client.task(id).priority == 0) }
            let good = try await client.send(.patch, "/v1/tasks", json: TaskBulkPatch(ids: ids, priority: 7, state: .cancelled))
            #expect(try good.decode(BulkResult.self).updated == 3)
            for id in ids {
                let task = try await client.task(id)
                #expect(task.priority == 7 && task.state == .cancelled)
            }
            let retried = try await client.send(.post, "/v1/jobs/\(job.id)/retry")
            #expect(try retried.decode(JobView.self).counts[.queued] == 3)
        }
    }

    @Test func pauseHidesAJobFromClaimsAndResumeBringsItBack() async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("a")
            let job = try await client.submit(echoJob(tasks: 2))
            #expect(try await client.send(.post, "/v1/jobs/\(job.id)/pause").status == 200)
            #expect(try await client.claim(agent, credential).isEmpty)
            #expect(try await client.send(.post, "/v1/jobs/\(job.id)/resume").status == 200)
            #expect(try await client.claim(agent, credential).count == 2)
            // Resuming a job that is not paused is refused.
            #expect(try await client.send(.post, "/v1/jobs/\(job.id)/resume").status == 409)
        }
    }
}
