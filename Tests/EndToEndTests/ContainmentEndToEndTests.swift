import Foundation
import PaddockClient
import PaddockProtocol
import Testing

/// Tasks in cgroups, through a real master and agent (issue: faults, containment).
extension EndToEnd { @Suite struct ContainmentEndToEndTests {
    @Test func aTaskPastItsRAMFailsWithReasonOOMAndTheAgentLivesOn() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("worker", ["--cpus", "1", "--ram", "1GiB"])
        var hog = shell("head -c 400000000 /dev/zero | tail >/dev/null", name: "hog")
        hog.requirements = TaskRequirements(resources: ResourceVector(cpus: 1, ram: 64 << 20))
        hog.maxAttempts = 1
        let job = try await farm.submit(JobSubmission(name: "oom", tasks: [hog]))
        let tasks = try await farm.waitForJob(job.id, timeout: 60)
        let task = try #require(tasks.first)
        #expect(task.state == .failed)
        #expect(task.reason == "oom")
        #expect(try await farm.logs(task.id).contains("memory limit of 64MiB"))
        let agent = try #require(try await farm.agent(named: "worker"))
        try await eventually("the OOM is counted in the agent's exceptions", timeout: 20) {
            let page: Page<ExceptionView> = try await farm.admin.call("GET", APIPath.exceptions(agent.id))
            return page.items.contains { $0.type == "oom" && $0.task == task.id }
        }
        // The agent was not what the kernel killed: it runs the next task.
        let next = try await farm.submit(JobSubmission(name: "next", tasks: [shell("echo next")]))
        #expect(try await farm.waitForJob(next.id, timeout: 30).map(\.state) == [.succeeded])
    }

    @Test func cancellingATaskThatDaemonizedLeavesNothingBehind() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("worker", ["--cpus", "1", "--ram", "1GiB"])
        // A new session and a double fork: no process group signal reaches the daemon.
        let job = try await farm.submit(JobSubmission(name: "daemon", tasks: [
            shell("setsid sh -c 'sleep 300 & sleep 300' & sleep 300", name: "daemonizer"),
        ]))
        let taskID = try #require(job.taskIDs?.first)
        try await eventually("the daemon and the task run", timeout: 30) { processes(of: taskID, in: farm).count >= 3 }
        _ = try await cli(farm, ["cancel", taskID.description])
        try await eventually("no process of the task is left", timeout: 20) { processes(of: taskID, in: farm).isEmpty }
        #expect(try await farm.task(taskID).state == .cancelled)
    }

    @Test func aTaskThatEndsLeavingADaemonTakesItAlong() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("worker", ["--cpus", "1", "--ram", "1GiB"])
        let job = try await farm.submit(JobSubmission(name: "leaver", tasks: [
            shell("setsid sleep 300 & echo left a daemon", name: "leaver"),
        ]))
        let tasks = try await farm.waitForJob(job.id, timeout: 30)
        #expect(tasks.map(\.state) == [.succeeded])
        let taskID = try #require(tasks.first?.id)
        try await eventually("the daemon is gone with its task", timeout: 20) { processes(of: taskID, in: farm).isEmpty }
    }
} }
