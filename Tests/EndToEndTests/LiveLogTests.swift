import Foundation
import PaddockClient
import PaddockProtocol
import Testing

/// Live logs and progress with real agents (issue: metrics, exceptions, live logs and progress).
extension EndToEnd { @Suite struct LiveLogTests {
    @Test func followerSeesLinesAsTheyComeAndTheWholeOutputAtTheEnd() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("worker", ["--cpus", "1", "--ram", "1GiB"])
        let job = try await farm.submit(JobSubmission(name: "ticker", tasks: [
            shell("for i in $(seq 1 15); do echo line $i; sleep 0.2; done", name: "ticker"),
        ]))
        let taskID = try #require(job.taskIDs?.first)
        try await eventually("the ticker runs", timeout: 20) { try await farm.task(taskID).state == .running }

        var received = ""
        var stateAtFirstLine: TaskState?
        for try await chunk in farm.admin.stream(APIPath.taskLogs(taskID), query: ["follow": "true"]) {
            if received.isEmpty { stateAtFirstLine = try await farm.task(taskID).state }
            received += String(decoding: chunk, as: UTF8.self)
        }
        #expect(stateAtFirstLine == .running, "the first lines arrived before the task ended")
        let expected = (1...15).map { "line \($0)\n" }.joined()
        #expect(received == expected)
        #expect(try await farm.task(taskID).state == .succeeded)
        // The CLI follows the same way; on a finished run it prints the whole log and ends.
        #expect(try await cli(farm, ["logs", "-f", taskID.description]) == expected)
    }

    @Test func restartingTheMasterMidTaskLosesAndDoublesNoLine() async throws {
        let farm = try Farm(leaseTimeout: "5s")
        try await farm.startMaster()
        try farm.startAgent("worker", ["--cpus", "1", "--ram", "1GiB"])
        let job = try await farm.submit(JobSubmission(name: "chatty", tasks: [
            shell("for i in $(seq 1 60); do echo line $i; sleep 0.05; done", name: "chatty"),
        ]))
        let taskID = try #require(job.taskIDs?.first)
        try await eventually("some output is in", timeout: 20) { try await farm.logs(taskID).contains("line 3\n") }
        farm.kill9("master")
        try await Task.sleep(for: .seconds(1.5))
        try await farm.startMaster()
        let tasks = try await farm.waitForJob(job.id, timeout: 30)
        #expect(tasks.map(\.state) == [.succeeded])
        #expect(tasks[0].attempt == 1, "the run was not repeated")
        #expect(try await farm.logs(taskID) == (1...60).map { "line \($0)\n" }.joined())
    }

    @Test func progressLinesMoveTheTaskAndTheJob() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("worker", ["--cpus", "2", "--ram", "1GiB"])
        let job = try await farm.submit(JobSubmission(name: "progress", tasks: [
            shell("echo PROGRESS 0.25; sleep 0.5; echo 'PROGRESS 50%'; sleep 3", name: "p"),
            shell("sleep 3", name: "quiet"),
        ]))
        let taskID = try #require(job.taskIDs?.first)
        try await eventually("the task reports half way", timeout: 20) { try await farm.task(taskID).progress == 0.5 }
        let midway = try await farm.job(job.id)
        #expect(midway.state == .running)
        #expect(abs(midway.progress - 0.25) < 0.01, "job progress is the mean of its tasks': \(midway.progress)")
        // `paddock watch` draws the bar until the job ends, and exits 0 when it succeeded.
        let watched = try await cli(farm, ["watch", job.id.description, "--interval", "0.2"])
        #expect(watched.contains("100%") && watched.contains("succeeded 2"))
        #expect(try await farm.task(taskID).progress == 1)
    }

    @Test func aJobsProgressRegexReadsBlenderFramesAgainstTheTasksRange() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("blender", ["--cpus", "1", "--ram", "1GiB"])
        let job = try await farm.submitRaw(#"""
            {"name": "shot", "frames": "11-20", "chunk": 10, "progress_regex": "Fra:(\\d+)",
             "command": ["sh", "-c", "for f in $(seq {start} 15); do echo Fra:$f Mem:1M; done; sleep 3"]}
            """#)
        let taskID = try #require(job.taskIDs?.first)
        try await eventually("half the frames are done", timeout: 20) { try await farm.task(taskID).progress == 0.5 }
        #expect(try await farm.task(taskID).frames == "11-20")
        #expect(try await farm.job(job.id).progressRegex == #"Fra:(\d+)"#)
        #expect(try await farm.waitForJob(job.id).map(\.state) == [.succeeded])
    }
} }
