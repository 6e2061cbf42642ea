import Foundation
import PaddockMaster
import PaddockProtocol
import Testing

/// A task's status (`openjd_status:`, issue 18 item 7) through the exchange: kept per run, shown in
/// the task view and the task list, not in the history, and counted with a finish in the same exchange.
@Suite struct ExchangeStatusTests {
    @Test func theLatestStatusOfTheRunIsShown() async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("a", cpus: 2)
            var submission = echoJob(tasks: 2)
            submission.maxAttempts = 1
            let job = try await client.submit(submission)
            let leases = try await client.exchange(agent, credential,
                                            ExchangeRequest(claim: ClaimRequest(slots: 2, wait: 0))).leases
            #expect(leases.count == 2)
            let (one, two) = (leases[0], leases[1])
            #expect(try await client.task(one.task).status == nil)
            for status in ["Loading the things", "Loading the things", "Processing the things"] {
                let answer = try await client.exchange(agent, credential, ExchangeRequest(
                    progress: [ExchangeProgress(task: one.task, epoch: one.epoch, progress: 0.5, status: status)]))
                #expect(answer.refused.isEmpty)
            }
            let task = try await client.task(one.task)
            #expect(task.status == "Processing the things" && task.progress == 0.5)
            #expect(task.history?.count == 2, "assign and start only: \(String(describing: task.history))")
            let list = try await client.send(.get, "/v1/tasks?job=\(job.id)").decode(Page<TaskView>.self)
            #expect(list.items.first { $0.id == one.task }?.status == "Processing the things")
            #expect(list.items.first { $0.id == two.task }?.status == nil)
            // The last status rides with the finish; a stale one is refused.
            let answer = try await client.exchange(agent, credential, ExchangeRequest(
                progress: [ExchangeProgress(task: two.task, epoch: two.epoch, progress: 1, status: "Done"),
                           ExchangeProgress(task: one.task, epoch: LeaseEpoch(one.epoch.rawValue + 7), progress: 1, status: "stale")],
                finished: [ExchangeFinish(task: two.task, report: FinishReport(epoch: two.epoch, outcome: .failed, exitCode: 0,
                                                                               reason: "The rules of mathematics have been violated!"))]))
            #expect(answer.refused.map(\.kind) == [.progress])
            let finished = try await client.task(two.task)
            #expect(finished.state == .failed && finished.status == "Done")
            #expect(finished.reason == "The rules of mathematics have been violated!")
            #expect(try await client.task(one.task).status == "Processing the things")
            // A retried task's next run starts without a status.
            #expect(try await client.send(.post, "/v1/tasks/\(two.task)/retry").status == 200)
            #expect(try await client.task(two.task).status == nil)
        }
    }
}
