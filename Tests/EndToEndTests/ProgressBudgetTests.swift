import Foundation
import PaddockClient
import PaddockProtocol
import PaddockTestSupport
import Testing

/// `progress_regex` under a time budget (issue 16), on a real farm.
extension EndToEnd { @Suite struct ProgressBudgetTests {
    /// `^(a+)+$` against a line of 3 000 a's and a b backtracks for longer than the universe's age:
    /// it is stopped at its budget and dropped for the task, which goes on (and its PROGRESS lines
    /// still count), while the agent keeps heartbeating.
    @Test func aCatastrophicProgressRegexDoesNotStopHeartbeats() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("worker", ["--cpus", "2"])
        try await eventually("the agent is online", timeout: 30) { try await farm.agent(named: "worker")?.state == .online }
        let marker = NSTemporaryDirectory() + "paddock-regex-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: marker) }
        var job = JobSubmission(name: "catastrophic", tasks: [shell("""
            for i in 1 2 3; do head -c 3000 /dev/zero | tr '\\0' a; echo b; done
            echo 'PROGRESS 50%'
            while [ ! -e \(marker) ]; do sleep 0.1; done
            """)])
        job.progressRegex = "^(a+)+$"
        job.maxAttempts = 1
        let submitted = try await farm.submit(job)
        let task = try #require(try await farm.tasks(job: submitted.id).first)
        try await eventually("the pattern is dropped, with a warning in the task's log", timeout: 60) {
            try await farm.logs(task.id).contains("progress_regex '^(a+)+$' took over")
        }
        try await eventually("the PROGRESS line after it counts", timeout: 60) { try await farm.task(task.id).progress == 0.5 }
        // The task still runs: the agent heartbeats (and its lease stays alive) all the while.
        try await farm.heartbeats(of: "worker", count: 3, timeout: 60)
        #expect(try await farm.task(task.id).state == .running)
        #expect(try await farm.agent(named: "worker")?.state == .online)
        _ = FileManager.default.createFile(atPath: marker, contents: nil)
        #expect(try await farm.waitForJob(submitted.id, timeout: 60).map(\.state) == [.succeeded])
        #expect(farm.log("worker").contains("progress_regex"))
    }
} }
