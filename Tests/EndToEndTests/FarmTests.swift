import Foundation
import PaddockAgent
import PaddockClient
import PaddockProtocol
import PaddockTestSupport
import Testing

/// All end-to-end suites run one after another: each starts several processes, and on a
/// 2-core machine running them at once would only make their timings noisy.
@Suite(.serialized) struct EndToEnd {}

/// The farm end to end, with real processes on loopback (issue: a working farm end to end).
extension EndToEnd { @Suite struct FarmTests {
    @Test func tasksRunOnAgentsThatFitThem() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("small", ["--cpus", "1", "--ram", "1GiB"])
        try farm.startAgent("big", ["--cpus", "4", "--ram", "8GiB", "--tags", "gpu"])
        try await eventually("two agents online", timeout: 20) {
            try await farm.agents().filter { $0.state == .online }.count == 2
        }
        let job = try await farm.submit(JobSubmission(name: "fit", tasks: [
            shell("echo one on $PADDOCK_AGENT_NAME", name: "one-a"),
            shell("echo one on $PADDOCK_AGENT_NAME", name: "one-b"),
            shell("echo three on $PADDOCK_AGENT_NAME", name: "three", cpus: 3),
            shell("echo tagged on $PADDOCK_AGENT_NAME", name: "tagged", tags: ["gpu"]),
            shell("echo never", name: "huge", cpus: 64),
        ]))
        #expect(job.warnings.count == 1)

        try await eventually("all but the huge task succeeded", timeout: 60) {
            try await farm.tasks(job: job.id).filter { $0.state == .succeeded }.count == 4
        }
        let tasks = try await farm.tasks(job: job.id)
        let agents = Dictionary(uniqueKeysWithValues: try await farm.agents().map { ($0.id, $0.name) })
        for task in tasks where task.name != "huge" {
            let ranOn = try #require(task.agent.flatMap { agents[$0] })
            let log = try await farm.logs(task.id)
            #expect(log.contains("on \(ranOn)"), "log of \(task.name): \(log)")
            #expect(task.exitCode == 0)
            if task.name == "three" || task.name == "tagged" { #expect(ranOn == "big") }
        }
        let huge = try #require(tasks.first { $0.name == "huge" })
        #expect(huge.state == .queued)
        #expect(huge.fitsNoAgent == true)
        let after = try await farm.job(job.id)
        #expect(after.warnings.contains { $0.contains("fit no agent") })
    }

    @Test func killedAgentsTaskIsRequeuedAndFinishedByAnother() async throws {
        let farm = try Farm(leaseTimeout: "2s")
        try await farm.startMaster()
        // With a child waiting in its cgroup for the next task, whatever this host's joins cost: it ends with the agent.
        try farm.startAgent("doomed", ["--cpus", "1", "--ram", "1GiB", "--warm-children", "1"])
        try await eventually("doomed online", timeout: 20) { try await farm.agent(named: "doomed")?.state == .online }
        let doomedPID = try #require(farm.pid("doomed"))
        let job = try await farm.submit(JobSubmission(name: "survive", tasks: [
            shell("echo ran on $PADDOCK_AGENT_NAME; sleep 2", name: "sleeper"),
        ]))
        let taskID = try #require(job.taskIDs?.first)
        try await eventually("the task runs on doomed", timeout: 20) { try await farm.task(taskID).state == .running }
        try farm.startAgent("rescuer", ["--cpus", "1", "--ram", "1GiB"])
        try await eventually("rescuer online", timeout: 20) { try await farm.agent(named: "rescuer")?.state == .online }
        var warm: [pid_t] = []
        try await eventually("doomed keeps a warm child", timeout: 20) {
            warm = ProcessTable.children(of: doomedPID, named: "paddock-warm")
            return !warm.isEmpty
        }
        let killedAt = Date()
        farm.kill9("doomed")
        try await eventually("the warm child ends with its agent", timeout: 20) {
            warm.allSatisfy(ProcessTable.isGone)
        }

        let tasks = try await farm.waitForJob(job.id, timeout: 30)
        let requeuedWithin = Date().timeIntervalSince(killedAt)
        #expect(tasks.map(\.state) == [.succeeded])
        let rescuer = try #require(try await farm.agent(named: "rescuer"))
        #expect(tasks[0].agent == rescuer.id)
        #expect(tasks[0].attempt == 2)
        #expect(try await farm.logs(taskID).contains("ran on rescuer"))
        #expect(try await farm.job(job.id).state == .succeeded)
        #expect(try await farm.agent(named: "doomed")?.state == .offline)
        // Lease timeout (2 s) + a sweep + a run of 2 s, with margin.
        #expect(requeuedWithin < 15)
    }

    @Test func killedMasterRestartsOnItsDataAndTheRunCompletes() async throws {
        let farm = try Farm(leaseTimeout: "3s")
        try await farm.startMaster()
        let ledger = farm.dir + "/ledger"
        try farm.startAgent("worker", ["--cpus", "2", "--ram", "2GiB"])
        try await eventually("worker online", timeout: 20) { try await farm.agent(named: "worker")?.state == .online }
        var jobs: [JobView] = []
        for index in 0..<3 {
            jobs.append(try await farm.submit(JobSubmission(name: "batch \(index)", tasks: (0..<4).map {
                shell("sleep 0.4; echo $PADDOCK_TASK_ID >> \(ledger)", name: "t\($0)")
            })))
        }
        try await eventually("something runs", timeout: 20) {
            try await farm.tasks(job: jobs[0].id).contains { $0.state == .running }
        }
        farm.kill9("master")
        try await Task.sleep(for: .seconds(1))
        try await farm.startMaster()

        for job in jobs {
            let tasks = try await farm.waitForJob(job.id, timeout: 60)
            #expect(tasks.count == 4)
            #expect(tasks.allSatisfy { $0.state == .succeeded }, "\(tasks.map(\.state))")
            #expect(tasks.map(\.id) == job.taskIDs)
        }
        let ids = try String(contentsOfFile: ledger, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(ids.count == 12, "every task ran exactly once: \(ids)")
        #expect(Set(ids).count == 12)
    }

    @Test func cliSubmitsAYAMLFrameJobAndShowsIt() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("renderer", ["--cpus", "2", "--ram", "2GiB"])
        let file = farm.dir + "/frames.yaml"
        try """
            name: frames
            frames: 1-10
            chunk: 4
            command: ["sh", "-c", "echo rendering {start}..{end}"]
            requirements:
              cpus: 1
              ram: 256MiB
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let submitted = try await cli(farm, ["submit", file, "--json"])
        let job = try WireJSON.decoder().decode(JobView.self, from: Data(submitted.utf8))
        #expect(job.counts.total == 3)
        let tasks = try await farm.waitForJob(job.id)
        #expect(tasks.allSatisfy { $0.state == .succeeded })
        #expect(try await farm.logs(tasks[2].id) == "rendering 9..10\n")
        let table = try await cli(farm, ["tasks", "--job", job.id.description])
        #expect(table.contains("frames 5-8") && table.contains("succeeded"))
        #expect(try await cli(farm, ["logs", tasks[0].id.description]) == "rendering 1..4\n")
        #expect(try await cli(farm, ["agents"]).contains("renderer"))
        #expect(try await cli(farm, ["job", job.id.description]).contains("3 succeeded"))
    }
}

}

/// Runs the CLI against the farm; returns its standard output.
func cli(_ farm: Farm, _ arguments: [String]) async throws -> String {
    let url = farm.url, caFile = farm.tls?.caFile
    // The CLI is waited for on a thread of its own: not on one of the two shared ones (see `offThePool`).
    let (status, output) = try await offThePool { () throws -> (Int32, String) in
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Farm.binary)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["PADDOCK_MASTER"] = url
        environment["PADDOCK_TOKEN"] = Farm.admin
        if let caFile { environment["PADDOCK_CA_FILE"] = caFile }
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
    #expect(status == 0, "paddock \(arguments.joined(separator: " "))")
    return output
}

/// An agent killed with `kill -9` and started again (issue: restarts).
extension EndToEnd { @Suite struct AgentRestartTests {
    @Test func restartedAgentKillsItsOrphansAndRequeuesAtOnce() async throws {
        let farm = try Farm(leaseTimeout: "60s")
        try await farm.startMaster()
        try farm.startAgent("phoenix", ["--cpus", "1", "--ram", "1GiB"])
        let job = try await farm.submit(JobSubmission(name: "orphans", tasks: [
            shell("if [ \"$PADDOCK_ATTEMPT\" = 1 ]; then sleep 300 & sleep 300; fi; echo attempt $PADDOCK_ATTEMPT", name: "forker"),
        ]))
        let taskID = try #require(job.taskIDs?.first)
        try await eventually("the forker runs", timeout: 20) { try await farm.task(taskID).state == .running }
        try await eventually("the forker's two sleeps run", timeout: 20) { processes(of: taskID, in: farm).count >= 2 }

        farm.kill9("phoenix")
        #expect(processes(of: taskID, in: farm).count >= 2, "the task's processes outlive the agent's kill -9")
        let restartedAt = Date()
        try farm.startAgent("phoenix", ["--cpus", "1", "--ram", "1GiB"])
        // Requeued when the agent says it is back, not after the 60 s lease timeout.
        let tasks = try await farm.waitForJob(job.id, timeout: 20)
        #expect(Date().timeIntervalSince(restartedAt) < 15)
        #expect(tasks.map(\.state) == [.succeeded])
        #expect(tasks[0].attempt == 2)
        #expect(try await farm.logs(taskID) == "attempt 2\n")
        #expect(processes(of: taskID, in: farm).isEmpty, "no process of the first run is left")
        // Requeued when the agent came back (its first heartbeat), not after the 60 s lease.
        let requeued = try #require(try await farm.task(taskID).history?.first { $0.reason == "agent restarted" })
        #expect(requeued.at.timeIntervalSince(restartedAt) < 5, "requeued \(requeued.at.timeIntervalSince(restartedAt))s after the restart")
    }
}

}

/// Pids of live processes whose environment names this task (of this farm: task ids repeat across farms).
func processes(of task: TaskID, in farm: Farm) -> [Int32] {
    let marker = Data("PADDOCK_TASK_ID=\(task)\0".utf8)
    let farmMarker = Data("PADDOCK_WORK_DIR=\(farm.dir)/".utf8)
    return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init).filter { pid in
        guard let stat = ProcessLedger.readProcFile("/proc/\(pid)/stat"),
              !String(decoding: stat, as: UTF8.self).contains(") Z ") else { return false }  // zombies are already dead
        guard let environ = ProcessLedger.readProcFile("/proc/\(pid)/environ") else { return false }
        return environ.range(of: marker) != nil && environ.range(of: farmMarker) != nil
    }
}
