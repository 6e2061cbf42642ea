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
} }
