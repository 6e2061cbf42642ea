import Foundation
import PaddockClient
import PaddockProtocol
import Testing

/// Scheduling depth with real agents and processes (issue: scheduling depth).
extension EndToEnd { @Suite struct SchedulingEndToEndTests {
    @Test func idleAgentGetsBackWhatAPrefetchedBacklogHadNotStartedAndEveryTaskRunsOnce() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        let ledger = farm.dir + "/ledger"
        try farm.startAgent("x", ["--cpus", "1", "--ram", "1GiB", "--prefetch", "20"])
        try await eventually("x online", timeout: 20) { try await farm.agent(named: "x")?.state == .online }
        let job = try await farm.submit(JobSubmission(name: "backlog", tasks: (0..<16).map {
            shell("echo $PADDOCK_TASK_ID $PADDOCK_AGENT_NAME >> \(ledger); sleep 0.4", name: "s\($0)")
        }))
        try await eventually("x holds the whole backlog", timeout: 20) {
            try await farm.tasks(job: job.id).allSatisfy { $0.state != .queued }
        }
        try farm.startAgent("y", ["--cpus", "1", "--ram", "1GiB"])
        let tasks = try await farm.waitForJob(job.id, timeout: 60)
        #expect(tasks.allSatisfy { $0.state == .succeeded })

        let lines = try String(contentsOfFile: ledger, encoding: .utf8).split(separator: "\n")
        let ids = lines.map { String($0.split(separator: " ")[0]) }
        #expect(Set(ids).count == 16, "every task ran: \(lines)")
        // A steal asks x to give back what it has not started: each task ran once, on one agent.
        #expect(ids.count == 16, "ran twice: \(lines)")
        let ranOnY = lines.filter { $0.hasSuffix(" y") }.count
        #expect(ranOnY > 0, "y got and ran some of x's backlog")
        var givenBack = 0
        for task in tasks {
            let history = try await farm.task(task.id).history ?? []
            // Finished once: one success, whatever else happened.
            #expect(history.filter { $0.transition == .succeed }.count == 1, "\(task.id): \(history)")
            // What x gave back it had not started: released from assigned, no attempt used.
            let releases = history.filter { $0.transition == .release }
            #expect(releases.allSatisfy { $0.from == .assigned }, "\(task.id): \(history)")
            givenBack += releases.count
            #expect(task.attempt == 1)
        }
        #expect(givenBack >= ranOnY, "y ran only what x gave back")
        #expect(farm.log("x").contains("given back before it started"))
    }

    @Test func diamondRunsInOrderWithRealProcesses() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("worker", ["--cpus", "4", "--ram", "1GiB"])
        let order = farm.dir + "/order"
        func step(_ name: String, _ after: [String]) -> TaskSpec {
            TaskSpec(name: name, command: ["sh", "-c", "sleep 0.2; echo \(name) >> \(order)"], dependsOn: after)
        }
        let job = try await farm.submit(JobSubmission(name: "diamond", tasks: [
            step("d", ["b", "c"]), step("b", ["a"]), step("c", ["a"]), step("a", []),
        ]))
        #expect(try await farm.waitForJob(job.id).allSatisfy { $0.state == .succeeded })
        let ran = try String(contentsOfFile: order, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(ran.first == "a" && ran.last == "d" && Set(ran[1...2]) == ["b", "c"], "\(ran)")
    }

    @Test func taskFailingOnOneAgentSucceedsOnAnotherWhichIsBlocklisted() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("cursed", ["--cpus", "1", "--ram", "1GiB"])
        var job = JobSubmission(name: "picky", tasks: [
            shell("[ \"$PADDOCK_AGENT_NAME\" != cursed ] && echo fine on $PADDOCK_AGENT_NAME", name: "picky"),
        ])
        job.maxAttempts = 6
        let submitted = try await farm.submit(job)
        try await eventually("cursed is blocklisted", timeout: 30) {
            try await farm.job(submitted.id).warnings.contains { $0.contains("blocklisted") }
        }
        let cursed = try #require(try await farm.agent(named: "cursed"))
        #expect(try await farm.job(submitted.id).blocklist == [BlocklistEntry(agent: cursed.id, failures: 3)])
        #expect(try await cli(farm, ["job", submitted.id.description]).contains("blocklisted agents: \(cursed.id)"))
        try farm.startAgent("blessed", ["--cpus", "1", "--ram", "1GiB"])
        let tasks = try await farm.waitForJob(submitted.id, timeout: 30)
        #expect(tasks.map(\.state) == [.succeeded])
        #expect(try await farm.logs(tasks[0].id) == "fine on blessed\n")
    }

    @Test func taskRunningPastItsTimeoutFailsWithThatReason() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("worker", ["--cpus", "1", "--ram", "1GiB"])
        let job = try await farm.submitRaw(#"""
            {"name": "slow", "max_attempts": 1, "tasks": [{"name": "sleeper", "command": ["sleep", "30"], "timeout": "1s"}]}
            """#)
        let started = Date()
        let tasks = try await farm.waitForJob(job.id, timeout: 20)
        #expect(Date().timeIntervalSince(started) < 15)
        #expect(tasks.map(\.state) == [.failed])
        #expect(tasks[0].reason == "timeout")
    }
} }
