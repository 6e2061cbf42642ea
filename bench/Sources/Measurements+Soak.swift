import Foundation
#if canImport(Glibc)
import Glibc
#endif
import PaddockProtocol

extension Measurements {
    /// The fault soak, longer than the test's: jobs of short tasks are submitted and run while the
    /// master (SQLite) is killed with SIGKILL and started again at random points, one agent is killed
    /// with SIGKILL and another stopped with SIGTERM (both started again). It fails unless every
    /// acknowledged task succeeds; the figures say how many ran twice and why, and what the kills cost.
    static func soak(_ context: BenchContext) async throws -> [Figure] {
        let jobs = context.sizes.soakJobs, perJob = context.sizes.soakTasksPerJob, kills = context.sizes.soakMasterKills
        return try await withFarm(context, "soak") { farm in
            let port = try await farm.startMaster(leaseTimeout: "5s")
            let agents = ["steady1", "steady2", "victim", "leaver"]
            for name in agents { try await farm.startAgent(name, slots: 2) }
            let file = farm.dir + "/ran.txt"
            let admin = farm.admin
            let start = ContinuousClock.now

            // Submissions, each tried once, go on in their own task while the master is killed.
            let submitter = Task { () -> (acknowledged: [JobID], refused: Int) in
                var acknowledged: [JobID] = [], refused = 0
                for index in 0..<jobs {
                    let submission = JobSubmission(name: "soak\(index)", maxAttempts: 3, tasks: (0..<perJob).map { task in
                        TaskSpec(name: "j\(index)n\(task)",
                                 command: ["sh", "-c", "echo \"$PADDOCK_TASK_NAME $PADDOCK_AGENT_NAME\" >> \(file)"],
                                 requirements: TaskRequirements(resources: ResourceVector(cpus: 1)))
                    })
                    do {
                        let job: JobView = try await admin.call("POST", APIPath.jobs, json: submission, timeout: 60)
                        acknowledged.append(job.id)
                    } catch {
                        refused += 1
                    }
                    try? await Task.sleep(for: .milliseconds(Int.random(in: 50...400)))
                }
                return (acknowledged, refused)
            }
            var recoveries: [Double] = []
            for round in 0..<kills {
                try await Task.sleep(for: .milliseconds(Int.random(in: 200...1500)))
                farm.kill9("master")
                let killed = ContinuousClock.now
                try await farm.startMaster(leaseTimeout: "5s", port: port)
                recoveries.append((ContinuousClock.now - killed).seconds)
                if round == kills / 3 {
                    farm.kill9("victim")
                    try await farm.startAgent("victim", slots: 2)
                } else if round == 2 * kills / 3 {
                    try await farm.terminate("leaver")
                    try await farm.startAgent("leaver", slots: 2)
                }
            }
            let (acknowledged, refused) = await submitter.value
            let expected = acknowledged.count * perJob
            // Every acknowledged task must succeed; a job whose submission went unanswered may exist too.
            var tasks: [TaskView] = []
            try await until("every acknowledged task ends", timeout: 1800, every: 0.5) {
                tasks = []
                for job in acknowledged {
                    var cursor: String?
                    repeat {
                        var query = ["job": job.description, "limit": "1000"]
                        if let cursor { query["cursor"] = cursor }
                        let page: Page<TaskView> = try await admin.call("GET", APIPath.tasks, query: query)
                        tasks += page.items
                        cursor = page.next
                    } while cursor != nil
                }
                return tasks.count == expected && tasks.allSatisfy { $0.state.isTerminal }
            }
            let seconds = (ContinuousClock.now - start).seconds
            let failed = tasks.filter { $0.state != .succeeded }
            guard failed.isEmpty else { throw BenchError("\(failed.count) acknowledged task(s) did not succeed") }

            var ranOn: [String: [String]] = [:]
            for line in ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(separator: "\n") {
                let parts = line.split(separator: " ")
                if parts.count == 2 { ranOn[String(parts[0]), default: []].append(String(parts[1])) }
            }
            let names = Set(tasks.map(\.name))
            let never = names.filter { ranOn[$0] == nil }.count
            guard never == 0 else { throw BenchError("\(never) acknowledged task(s) never ran") }
            let twice = ranOn.filter { names.contains($0.key) && $0.value.count > 1 }
            let onVictim = twice.filter { $0.value.contains("victim") }.count
            let thrice = twice.filter { $0.value.count > 2 }.count
            guard thrice == 0 else { throw BenchError("\(thrice) task(s) ran three times or more") }
            let recovery = recoveries.sorted()
            return [
                Figure("soak: acknowledged tasks, all succeeded", Double(expected), "tasks",
                       note: "\(acknowledged.count) jobs acknowledged, \(refused) submissions refused while the master was down"),
                Figure("soak: master SIGKILLs (SQLite), restarted at once", Double(kills), "kills"),
                Figure("soak: tasks per second through the kills", Double(expected) / seconds, "tasks/s"),
                Figure("soak: master kill to answering again, p50", recovery[recovery.count / 2] * 1000, "ms"),
                Figure("soak: tasks run twice, a run on the SIGKILLed agent among them", Double(onVictim), "tasks"),
                Figure("soak: tasks run twice otherwise (stopped by the SIGTERM mid-run)", Double(twice.count - onVictim), "tasks"),
            ]
        }
    }
}
