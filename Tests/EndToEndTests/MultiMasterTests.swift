import Foundation
import PaddockClient
import PaddockProtocol
import PaddockTestSupport
import Testing

extension EndToEnd {
    /// Several masters on one PostgreSQL behind HAProxy (docs/ARCHITECTURE.md §7): losing a master
    /// or the database for a while loses no task and finishes none twice.
    @Suite(.serialized) struct MultiMasterTests {
        /// `count` tasks each appending its own name to `file`: the file says how often each ran.
        static func appending(_ count: Int, to file: String, sleep: Double = 0) -> JobSubmission {
            let pause = sleep > 0 ? "sleep \(sleep); " : ""
            return JobSubmission(name: "append", maxAttempts: 3, tasks: (0..<count).map { index in
                TaskSpec(name: "n\(index)", command: ["sh", "-c", pause + "echo \"$PADDOCK_TASK_NAME\" >> \(file)"],
                         requirements: TaskRequirements(resources: ResourceVector(cpus: 1)))
            })
        }

        /// How many times each name appears in `file`.
        static func runs(in file: String) -> [String: Int] {
            let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").reduce(into: [:]) { $0[String($1), default: 0] += 1 }
        }

        /// Every task of the job, page by page.
        static func allTasks(_ farm: Farm, job: JobID) async throws -> [TaskView] {
            var tasks: [TaskView] = []
            var after: String?
            repeat {
                var query = ["job": job.description, "limit": "1000"]
                if let after { query["cursor"] = after }
                let page: Page<TaskView> = try await farm.admin.call("GET", APIPath.tasks, query: query)
                tasks += page.items
                after = page.next
            } while after != nil
            return tasks
        }

        /// Runs of tasks that started again because their lease was lost (expired, or its agent
        /// restarted or left), each as "task: from state, agent, reason, when"; and how many leases
        /// went back because they never reached their agent (an answer lost with the master).
        static func lostLeases(_ farm: Farm, job: JobID) async throws -> (lost: [String], neverReached: Int) {
            var lost: [String] = []
            var neverReached = 0
            for task in try await allTasks(farm, job: job) {
                let view: TaskView = try await farm.admin.call("GET", APIPath.task(task.id), query: ["history": "true"])
                for event in view.history ?? [] {
                    if event.transition == .release && event.reason?.contains("never reached") == true { neverReached += 1 }
                    guard event.transition == .expireLease else { continue }
                    lost.append("\(task.name): \(event.from.rawValue) on \(event.agent?.description ?? "-") epoch \(event.epoch), "
                                + "\(event.reason ?? "-") at \(event.at.timeIntervalSince1970)")
                }
            }
            return (lost, neverReached)
        }

        @Test func twoThousandTasksThroughHAProxyRunExactlyOnceWhileAMasterIsKilled() async throws {
            let cluster = try await Cluster(leaseTimeout: "10s")
            let farm = cluster.farm
            try await cluster.start(masters: 3)
            for index in 1...4 { try farm.startAgent("agent\(index)", ["--cpus", "2", "--slots", "2"] + farm.caArguments) }
            try await eventually("4 agents online", timeout: 30) { (try? await farm.agents().count) == 4 }

            let file = farm.dir + "/ran.txt"
            let count = 2000
            let job = try await retryingUnavailable("submit") { try await farm.submit(Self.appending(count, to: file)) }

            // Watch every agent's committed resources while the run goes on.
            let watcher = Task { () -> [String] in
                var overCommitted: [String] = []
                while !Task.isCancelled {
                    for agent in (try? await farm.agents()) ?? [] where !agent.resources.free.isNonNegative {
                        overCommitted.append("\(agent.name): \(agent.resources.free.summary) free")
                    }
                    try? await Task.sleep(for: .milliseconds(200))
                }
                return overCommitted
            }
            try await eventually("a quarter of the tasks done", timeout: 120) {
                ((try? await farm.job(job.id))?.counts[.succeeded] ?? 0) >= count / 4
            }
            let killedAt = Date()
            farm.kill9(cluster.masterName(1))
            _ = try await farm.waitForJob(job.id, timeout: 300)
            let tasks = try await retryingUnavailable("tasks") { try await Self.allTasks(farm, job: job.id) }
            watcher.cancel()
            let overCommitted = await watcher.value

            #expect(tasks.count == count && tasks.allSatisfy { $0.state == .succeeded })
            let runs = Self.runs(in: file)
            #expect(runs.count == count, "\(count - runs.count) task(s) never ran")
            let twice = runs.filter { $0.value > 1 }
            #expect(twice.isEmpty, "ran more than once: \(twice.keys.sorted().prefix(10))")
            #expect(overCommitted.isEmpty, "over-committed: \(overCommitted.prefix(5))")
            // A lease whose answer was lost with the master goes back when the agent's next heartbeat
            // says that exchange ended (`HeartbeatRequest.answered`), long before it would expire.
            let leases = try await retryingUnavailable("history") { try await Self.lostLeases(farm, job: job.id) }
            print("multi-master run: \(count) tasks on 3 masters (one killed -9 mid-run at \(killedAt.timeIntervalSince1970)), "
                  + "4 agents; leases that never reached their agent, given back: \(leases.neverReached); "
                  + "reruns because a lease was lost: \(leases.lost.count)")
            #expect(leases.lost.isEmpty, "leases lost: \(leases.lost.prefix(20))")
        }

        /// The fault soak on three PostgreSQL masters behind HAProxy: one master at a time is killed with
        /// SIGKILL and started again while jobs are submitted and run, and an agent is killed with SIGKILL.
        @Test func soakThroughMastersKilledOneAtATime() async throws {
            let cluster = try await Cluster(leaseTimeout: "10s")
            let farm = cluster.farm
            try await cluster.start(masters: 3)
            for name in ["steady1", "steady2", "victim"] { try farm.startAgent(name, ["--cpus", "2", "--slots", "2"] + farm.caArguments) }
            try await eventually("3 agents online", timeout: 30) { (try? await farm.agents().count) == 3 }
            let seed = UInt64.random(in: 0...UInt64.max)
            print("multi-master soak: seed \(seed)")
            var random = SplitMix64(seed: seed)
            let killerSeed = random.next()
            let file = farm.dir + "/ran.txt"
            let killer = Task { () throws -> Int in
                var random = SplitMix64(seed: killerSeed)
                for round in 0..<6 {
                    try await Task.sleep(for: .milliseconds(Int.random(in: 300...1500, using: &random)))
                    let index = round % 3
                    farm.kill9(cluster.masterName(index))
                    try await Task.sleep(for: .milliseconds(Int.random(in: 200...1500, using: &random)))
                    try await cluster.startMaster(index)
                    if round == 2 {
                        farm.kill9("victim")
                        try farm.startAgent("victim", ["--cpus", "2", "--slots", "2"] + farm.caArguments)
                    }
                }
                return 6
            }
            var acknowledged: [JobID] = []
            var refused = 0
            for index in 0..<4 {
                let submission = JobSubmission(name: "soak\(index)", maxAttempts: 3, tasks: (0..<100).map { task in
                    TaskSpec(name: "j\(index)n\(task)",
                             command: ["sh", "-c", "echo \"$PADDOCK_TASK_NAME $PADDOCK_AGENT_NAME\" >> \(file)"],
                             requirements: TaskRequirements(resources: ResourceVector(cpus: 1)))
                })
                do { acknowledged.append(try await farm.submit(submission).id) } catch { refused += 1 }
                try await Task.sleep(for: .milliseconds(Int.random(in: 100...600, using: &random)))
            }
            let kills = try await killer.value
            for job in acknowledged {
                _ = try await retryingUnavailable("job \(job)", timeout: 300) { try await farm.waitForJob(job, timeout: 300) }
            }
            var tasks: [TaskView] = []
            for job in acknowledged { tasks += try await retryingUnavailable("tasks") { try await Self.allTasks(farm, job: job) } }
            #expect(tasks.count == acknowledged.count * 100)
            #expect(tasks.allSatisfy { $0.state == .succeeded })
            var ranOn: [String: [String]] = [:]
            for line in ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(separator: "\n") {
                let parts = line.split(separator: " ")
                if parts.count == 2 { ranOn[String(parts[0]), default: []].append(String(parts[1])) }
            }
            let never = tasks.filter { ranOn[$0.name] == nil }
            #expect(never.isEmpty, "acknowledged tasks that never ran: \(never.prefix(5).map(\.name))")
            let names = Set(tasks.map(\.name))
            let twice = ranOn.filter { $0.value.count > 1 && names.contains($0.key) }
            let unexplained = twice.filter { $0.value.count > 2 || !$0.value.contains("victim") }
            #expect(unexplained.isEmpty, "ran twice without an agent killed under it: \(unexplained.prefix(5))")
            print("multi-master soak: \(tasks.count) tasks of \(acknowledged.count) acknowledged jobs (\(refused) refused), "
                  + "\(kills) masters killed one at a time, one agent SIGKILLed; tasks run twice: \(twice.count)")
        }

        @Test func aCancelAndASubmissionOnOneMasterReachAnAgentWaitingOnAnotherAtOnce() async throws {
            let cluster = try await Cluster(leaseTimeout: "10s")
            try await cluster.start(masters: 2)
            // The agents' long-polls (claims and talkback) are held by master 2 only. The task below
            // needs two CPUs: only agent1 can take it.
            try cluster.startAgent("agent1", on: 1, ["--cpus", "2"])
            try cluster.startAgent("small", on: 1, ["--cpus", "1"])
            let viaMaster1 = cluster.admin(0)
            try await eventually("agents online", timeout: 30) {
                let page: Page<AgentView>? = try? await viaMaster1.call("GET", APIPath.agents)
                return page?.items.count == 2 && page?.items.allSatisfy { $0.state == .online } == true
            }
            // Let the agents settle into their long-poll claims on master 2.
            try await Task.sleep(for: .seconds(1))
            func wakeups() async -> Int? {
                await cluster.get(1, "/metrics").body.split(separator: "\n")
                    .first { $0.hasPrefix("paddock_claim_wakeups_total ") }.flatMap { Int($0.split(separator: " ")[1]) }
            }
            let wakeupsBefore = try #require(await wakeups())

            let pidFile = cluster.farm.dir + "/pid"
            let submitted = Date()
            let job: JobView = try await viaMaster1.call("POST", APIPath.jobs, json: JobSubmission(name: "sleeper", tasks: [
                TaskSpec(name: "sleep", command: ["sh", "-c", "echo $$ > \(pidFile); exec sleep 60"],
                         requirements: TaskRequirements(resources: ResourceVector(cpus: 2)))]))
            let task = try #require(job.taskIDs?.first)
            try await eventually("the task runs", timeout: 10) {
                let view: TaskView? = try? await viaMaster1.call("GET", APIPath.task(task))
                return view?.state == .running && FileManager.default.fileExists(atPath: pidFile)
            }
            let startLatency = Date().timeIntervalSince(submitted)
            // The wake-up crossed with its work: master 2 woke agent1's held claim, not the small one's
            // (none, had agent1 been between two long-polls: its next one then took the task).
            let woken = try #require(await wakeups()) - wakeupsBefore
            #expect(woken <= 1, "master 2 woke \(woken) held claims for one task only agent1 fits")
            let pid = try #require(Int32((try String(contentsOfFile: pidFile, encoding: .utf8))
                .trimmingCharacters(in: .whitespacesAndNewlines)))

            let cancelled = Date()
            let _: JobView = try await viaMaster1.call("POST", APIPath.job(job.id, "cancel"))
            try await eventually("the task's process is gone", timeout: 10) { kill(pid, 0) != 0 }
            let cancelLatency = Date().timeIntervalSince(cancelled)
            print("across masters: submit on master 1 → running on an agent waiting on master 2 in "
                  + "\(Int(startLatency * 1000)) ms (\(woken) held claim woken); cancel on master 1 → process gone in \(Int(cancelLatency * 1000)) ms")
            // The agent's claim long-poll waits 20 s and its talkback one longer: these came by wake-up, not by timeout.
            #expect(startLatency < 1.0)
            #expect(cancelLatency < 1.0)
        }

        @Test func postgresStoppedForTenSecondsMidRunLosesNothing() async throws {
            // Leases outlast the outage: agents keep their tasks while nobody can renew them.
            let cluster = try await Cluster(leaseTimeout: "30s")
            let farm = cluster.farm
            try await cluster.start(masters: 2)
            for index in 1...2 { try farm.startAgent("agent\(index)", ["--cpus", "2", "--slots", "2"] + farm.caArguments) }
            try await eventually("2 agents online", timeout: 30) { (try? await farm.agents().count) == 2 }
            let file = farm.dir + "/ran.txt"
            let count = 300
            let job = try await retryingUnavailable("submit") {
                try await farm.submit(Self.appending(count, to: file, sleep: 0.05))
            }
            try await eventually("some tasks done", timeout: 60) { ((try? await farm.job(job.id))?.counts[.succeeded] ?? 0) >= 40 }

            try await cluster.postgres.stop()
            let stopped = Date()
            for index in 0..<2 {
                try await eventually("master \(index + 1) reports the database down", timeout: 8) {
                    await cluster.get(index, "/healthz").status == 503
                }
                let answer = await cluster.get(index, "/v1/jobs")
                #expect(answer.status == 503, "GET /v1/jobs answered \(answer.status): \(answer.body)")
                #expect(answer.body.contains("\"error\""))
            }
            let left = 10 - Date().timeIntervalSince(stopped)
            if left > 0 { try await Task.sleep(for: .seconds(left)) }
            try await cluster.postgres.restart()

            try await eventually("masters healthy again", timeout: 30) {
                var healthy = true
                for index in 0..<2 where await cluster.get(index, "/healthz").status != 200 { healthy = false }
                return healthy
            }
            _ = try await farm.waitForJob(job.id, timeout: 180)
            let tasks = try await retryingUnavailable("tasks") { try await Self.allTasks(farm, job: job.id) }
            #expect(tasks.count == count && tasks.allSatisfy { $0.state == .succeeded })
            let runs = Self.runs(in: file)
            #expect(runs.count == count, "\(count - runs.count) task(s) never ran")
            #expect(runs.filter { $0.value > 1 }.isEmpty, "some ran twice")
            for index in 0..<2 {
                #expect(!farm.log(cluster.masterName(index)).contains("unhandled error"), "a 500 on master \(index + 1)")
            }
        }
    }
}
