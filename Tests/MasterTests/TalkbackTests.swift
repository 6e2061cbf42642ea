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
