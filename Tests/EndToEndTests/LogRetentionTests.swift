import Foundation
import PaddockClient
import PaddockProtocol
import PaddockTestSupport
import Testing

/// `--log-retention` (issue 16), on a real farm: the logs of tasks that ended long enough ago go,
/// those of a task still running stay.
extension EndToEnd { @Suite struct LogRetentionTests {
    @Test func logsOfTasksEndedPastTheRetentionAreDeleted() async throws {
        let farm = try Farm()
        try await farm.startMaster(["--log-retention", "5s"])
        try farm.startAgent("worker", ["--cpus", "2"])
        let marker = NSTemporaryDirectory() + "paddock-retention-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: marker) }
        let running = try await farm.submit(JobSubmission(name: "running", tasks: [shell("""
            echo still here
            while [ ! -e \(marker) ]; do sleep 0.1; done
            """)]))
        let ended = try await farm.submit(JobSubmission(name: "ended", tasks: [shell("echo said and done")]))
        let endedTask = try #require(try await farm.waitForJob(ended.id, timeout: 60).first)
        #expect(try await farm.logs(endedTask.id).contains("said and done"))
        try await eventually("the ended task's log is deleted", timeout: 120) { try await farm.logs(endedTask.id).isEmpty }
        let runningTask = try #require(try await farm.tasks(job: running.id).first)
        #expect(try await farm.task(runningTask.id).state == .running)
        #expect(try await farm.logs(runningTask.id).contains("still here"))
        #expect(farm.log("master").contains("log retention: deleted the logs of"))
        _ = FileManager.default.createFile(atPath: marker, contents: nil)
        _ = try await farm.waitForJob(running.id, timeout: 60)
    }
} }
