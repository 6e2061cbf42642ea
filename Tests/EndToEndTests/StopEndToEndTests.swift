import Foundation
import PaddockClient
import PaddockProtocol
import Testing

/// SIGTERM ends an agent within 10 s whatever it is doing (issue: faults, graceful stop).
extension EndToEnd { @Suite struct StopEndToEndTests {
    @Test func anAgentStillEnrollingWithAMasterThatIsGoneStopsAtOnce() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        farm.kill9("master")
        try farm.startAgent("lonely", ["--cpus", "1"])
        _ = try await farm.waitForLine(in: farm.dir + "/lonely.log", containing: "enrolling:")
        let took = try await farm.terminate("lonely", within: .seconds(30))
        let elapsed = try #require(took, "the agent still ran 30 s after SIGTERM")
        #expect(elapsed < .seconds(10), "SIGTERM took \(elapsed)")
    }

    @Test func anAgentRunningATaskWhoseMasterIsGoneStopsWithinTheDeadlineAndLeavesNothing() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("stranded", ["--cpus", "1"])
        let job = try await farm.submit(JobSubmission(name: "long", tasks: [shell("sleep 300", name: "long")]))
        let taskID = try #require(job.taskIDs?.first)
        try await eventually("the task runs", timeout: 30) { processes(of: taskID, in: farm).count >= 1 }
        farm.kill9("master")
        _ = try await farm.waitForLine(in: farm.dir + "/stranded.log", containing: "failed")
        let took = try await farm.terminate("stranded", within: .seconds(30))
        let elapsed = try #require(took, "the agent still ran 30 s after SIGTERM")
        #expect(elapsed < .seconds(10), "SIGTERM took \(elapsed)")
        #expect(processes(of: taskID, in: farm).isEmpty, "the task outlived its agent's stop")
    }

    /// A run that ends well as its agent stops (here: it exits 0 on the SIGTERM the stop sends) is a
    /// success, reported once: not a failure that would run it again (the fault soak's one
    /// unexplained rerun), nor a release.
    @Test func aRunThatEndsWellAsItsAgentStopsSucceedsOnce() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("stopping", ["--cpus", "1"])
        let marker = farm.dir + "/runs.txt"
        let job = try await farm.submit(JobSubmission(name: "graceful", maxAttempts: 3, tasks: [shell(
            "echo run >> \(marker); trap 'exit 0' TERM; while :; do sleep 0.1; done", name: "graceful")]))
        let taskID = try #require(job.taskIDs?.first)
        try await eventually("the task runs", timeout: 30) { try await farm.task(taskID).state == .running }
        try await eventually("its shell has set its trap", timeout: 30) { processes(of: taskID, in: farm).count >= 2 }
        let took = try await farm.terminate("stopping", within: .seconds(30))
        #expect(took != nil, "the agent still ran 30 s after SIGTERM")
        let task = try await farm.task(taskID)
        #expect(task.state == .succeeded, "\(task.state): \(task.reason ?? "")")
        #expect(task.attempt == 1)
        #expect(try String(contentsOfFile: marker, encoding: .utf8) == "run\n", "it ran once")
    }
} }
