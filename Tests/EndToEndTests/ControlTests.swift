import Foundation
import PaddockClient
import PaddockProtocol
import Testing

/// Talkback and the control of jobs, tasks and agents, with real processes (issue: talkback).
extension EndToEnd { @Suite struct ControlTests {
    @Test func cancelKillsTheWholeProcessGroupAndFreesTheAgent() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("worker", ["--cpus", "1", "--ram", "1GiB"])
        let job = try await farm.submit(JobSubmission(name: "forker", tasks: [
            shell("sleep 300 & sleep 300", name: "forker"),
        ]))
        let taskID = try #require(job.taskIDs?.first)
        try await eventually("the forker runs", timeout: 20) { try await farm.task(taskID).state == .running }
        try await eventually("its grandchild runs", timeout: 10) { processes(of: taskID, in: farm).count >= 3 }

        let said = try await cli(farm, ["cancel", taskID.description])
        #expect(said.contains("cancelled"))
        try await eventually("no process of the task's group is left", timeout: 10) {
            processes(of: taskID, in: farm).isEmpty
        }
        #expect(try await farm.task(taskID).state == .cancelled)
        let worker = try #require(try await farm.agent(named: "worker"))
        try await eventually("the agent's resources are free", timeout: 10) {
            try await farm.agent(named: "worker")?.resources.free == worker.resources.total
        }
        // It claims the next task.
        let next = try await farm.submit(JobSubmission(name: "next", tasks: [shell("echo next")]))
        #expect(try await farm.waitForJob(next.id, timeout: 20).map(\.state) == [.succeeded])
    }

    @Test func cancellingAJobStopsItsRunningTasks() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("worker", ["--cpus", "2", "--ram", "1GiB"])
        let job = try await farm.submit(JobSubmission(name: "long", tasks: (0..<4).map { shell("sleep 300", name: "s\($0)") }))
        try await eventually("two run", timeout: 20) {
            try await farm.tasks(job: job.id).filter { $0.state == .running }.count == 2
        }
        _ = try await cli(farm, ["cancel", job.id.description])
        let tasks = try await farm.waitForJob(job.id, timeout: 20)
        #expect(tasks.allSatisfy { $0.state == .cancelled })
        #expect(try await farm.job(job.id).state == .cancelled)
        try await eventually("the sleeps are gone", timeout: 10) {
            tasks.allSatisfy { processes(of: $0.id, in: farm).isEmpty }
        }
    }

    @Test func drainFinishesWhatRunsAndClaimsNothingUntilUndrained() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("worker", ["--cpus", "1", "--ram", "1GiB"])
        let first = try await farm.submit(JobSubmission(name: "first", tasks: [shell("sleep 1.5; echo done", name: "slow")]))
        let slow = try #require(first.taskIDs?.first)
        try await eventually("the slow task runs", timeout: 20) { try await farm.task(slow).state == .running }
        let worker = try #require(try await farm.agent(named: "worker"))

        #expect(try await cli(farm, ["drain", worker.id.description]).contains("draining"))
        let second = try await farm.submit(JobSubmission(name: "second", tasks: [shell("echo second")]))
        _ = try await farm.waitForJob(first.id, timeout: 20)
        #expect(try await farm.task(slow).state == .succeeded)
        // Two heartbeats after its slot freed: the agent is alive and had its chance to claim.
        try await farm.heartbeats(of: "worker", count: 2)
        #expect(try await farm.job(second.id).counts[.queued] == 1, "a draining agent claims nothing")
        #expect(try await farm.agent(named: "worker")?.state == .draining)

        #expect(try await cli(farm, ["undrain", worker.id.description]).contains("online"))
        #expect(try await farm.waitForJob(second.id, timeout: 20).map(\.state) == [.succeeded])
    }

    @Test func pausedJobStartsNothingUntilResumed() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        let job = try await farm.submit(JobSubmission(name: "paused", tasks: (0..<5).map { shell("echo \($0)", name: "e\($0)") }))
        #expect(try await cli(farm, ["pause", job.id.description]).contains("paused"))
        try farm.startAgent("worker", ["--cpus", "2", "--ram", "1GiB"])
        try await eventually("worker online", timeout: 20) { try await farm.agent(named: "worker")?.state == .online }
        // Work submitted after the paused job runs: the agent claimed, and passed the paused job over.
        let after = try await farm.submit(JobSubmission(name: "after", tasks: [shell("echo after")]))
        #expect(try await farm.waitForJob(after.id, timeout: 20).map(\.state) == [.succeeded])
        #expect(try await farm.tasks(job: job.id).allSatisfy { $0.state == .queued && $0.attempt == 0 })
        #expect(try await farm.job(job.id).state == .paused)
        _ = try await cli(farm, ["resume", job.id.description])
        #expect(try await farm.waitForJob(job.id, timeout: 20).allSatisfy { $0.state == .succeeded })
    }

    @Test func commandSentWhileTheAgentIsStoppedIsAppliedOnceAfterItRestarts() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("sleeper", ["--cpus", "1", "--ram", "1GiB"])
        try await eventually("sleeper online", timeout: 20) { try await farm.agent(named: "sleeper")?.state == .online }
        let agent = try #require(try await farm.agent(named: "sleeper"))
        try await farm.terminate("sleeper")
        try await eventually("sleeper offline", timeout: 20) { try await farm.agent(named: "sleeper")?.state == .offline }

        // Sent straight to the agent's queue while it is away: drain.
        let accepted: CommandAccepted = try await farm.admin.call(
            "POST", APIPath.commands(agent.id), json: CommandRequest(kind: .drain))
        try farm.startAgent("sleeper", ["--cpus", "1", "--ram", "1GiB"])
        try await eventually("the agent applied the drain", timeout: 20) {
            farm.log("sleeper").contains("command \(accepted.seq): drain")
        }
        let job = try await farm.submit(JobSubmission(name: "waits", tasks: [shell("echo ran")]))
        try await farm.heartbeats(of: "sleeper", count: 2)
        #expect(try await farm.job(job.id).counts[.queued] == 1)

        // Undrain, restart again: the old drain is not applied a second time.
        _ = try await cli(farm, ["undrain", agent.id.description])
        #expect(try await farm.waitForJob(job.id, timeout: 20).map(\.state) == [.succeeded])
        try await farm.terminate("sleeper")
        try farm.startAgent("sleeper", ["--cpus", "1", "--ram", "1GiB"])
        let again = try await farm.submit(JobSubmission(name: "again", tasks: [shell("echo again")]))
        #expect(try await farm.waitForJob(again.id, timeout: 20).map(\.state) == [.succeeded])
        let applied = farm.log("sleeper").components(separatedBy: "command \(accepted.seq): drain").count - 1
        #expect(applied == 1)
    }

    @Test func illegalControlRequestsAnswer4xxAndChangeNothing() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("worker", ["--cpus", "1", "--ram", "1GiB"])
        let done = try await farm.submit(JobSubmission(name: "done", tasks: [shell("echo ok")]))
        let finished = try #require(done.taskIDs?.first)
        _ = try await farm.waitForJob(done.id)

        func refusal(_ method: String, _ path: String, _ body: String = "{}") async throws -> PaddockError? {
            do {
                _ = try await farm.admin.raw(method, path, body: Data(body.utf8), contentType: "application/json")
                return nil
            } catch .api(let error) {
                return error
            }
        }
        let cancelFinished = try #require(try await refusal("POST", APIPath.task(finished, "cancel")))
        #expect(cancelFinished.status == 409 && cancelFinished.code == "illegal_transition")
        #expect(try await farm.task(finished).state == .succeeded)

        let running = try await farm.submit(JobSubmission(name: "running", tasks: [shell("sleep 300")]))
        let sleeper = try #require(running.taskIDs?.first)
        try await eventually("it runs", timeout: 20) { try await farm.task(sleeper).state == .running }
        let resume = try #require(try await refusal("POST", APIPath.job(running.id, "resume")))
        #expect(resume.status == 409)
        #expect(try await farm.job(running.id).state == .running)

        let bulk = try #require(try await refusal("PATCH", APIPath.tasks,
            #"{"ids": ["\#(sleeper)", "t99999"], "priority": 50}"#))
        #expect(bulk.status == 404)
        #expect(try await farm.task(sleeper).priority == 0, "nothing changed")

        let bulkIllegal = try #require(try await refusal("PATCH", APIPath.tasks,
            #"{"ids": ["\#(sleeper)", "\#(finished)"], "state": "cancelled"}"#))
        #expect(bulkIllegal.status == 409)
        #expect(try await farm.task(sleeper).state == .running, "nothing changed")

        // The CLI says so clearly and exits non-zero.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Farm.binary)
        process.arguments = ["cancel", "t99999", "--master", farm.url, "--token", Farm.admin]
        let stderr = Pipe()
        process.standardError = stderr
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus != 0)
        #expect(String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .contains("task t99999 does not exist"))
        _ = try await cli(farm, ["cancel", running.id.description])
    }
} }
