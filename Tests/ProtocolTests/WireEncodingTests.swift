import Foundation
import PaddockProtocol
import Testing

/// Sample values of every type the master answers with, fully populated.
enum Samples {
    static let date = Date(timeIntervalSince1970: 1_750_000_000)

    static func job(taskIDs: [TaskID]? = [TaskID(rawValue: 1)],
                    blocklist: [BlocklistEntry]? = [BlocklistEntry(agent: AgentID(rawValue: 5), failures: 3)]) -> JobView {
        var job = JobView(id: JobID(rawValue: 12), name: "render", owner: "admin", priority: 0, labels: ["team": "fx"],
                          state: .running, paused: false, createdAt: date,
                          counts: TaskCounts([.blocked: 2, .queued: 1, .running: 1]),
                          progress: 0.5, warnings: ["1 queued task(s) fit no agent"], taskIDs: taskIDs)
        job.blocklist = blocklist
        if blocklist != nil { job.progressRegex = #"Fra:(\d+)"# }
        return job
    }

    static func task(full: Bool) -> TaskView {
        var task = TaskView(
            id: TaskID(rawValue: 34), jobID: JobID(rawValue: 12), name: "frames 1-10", command: ["echo", "hi"],
            env: full ? ["A": "b"] : [:], cwd: full ? "/tmp" : nil, requirements: requirements(cpus: 2, ram: GiB),
            priority: 0, timeout: full ? 60 : nil, maxAttempts: 3, attempt: full ? 1 : 0,
            state: full ? .succeeded : .queued, agent: full ? AgentID(rawValue: 5) : nil, epoch: LeaseEpoch(full ? 1 : 0),
            progress: full ? 1 : 0, exitCode: full ? 0 : nil, reason: full ? "done" : nil, createdAt: date,
            startedAt: full ? date : nil, finishedAt: full ? date : nil)
        if full {
            task.fitsNoAgent = false
            task.usage = usage
            task.frames = "1-10"
            task.status = "Processing the things"
            task.parameters = ["Frame": "7", "Layer": "beauty"]
            task.history = [event]
        }
        return task
    }

    static let usage = TaskUsage(cpuSeconds: 12.5, rss: 300 * MiB, peakRSS: 512 * MiB, processes: 3)

    static let gpu = HostMetrics.GPU(index: 0, name: "NVIDIA A100", utilizationPercent: 12, memoryTotal: 40 * GiB,
                                     memoryUsed: GiB)

    static let hostMetrics = HostMetrics(
        at: date, cpu: .init(busyPercent: 37.5, perCore: [50, 25], cores: 2), load: .init(one: 1.5, five: 1, fifteen: 0.5),
        memory: .init(total: 8 * GiB, used: 3 * GiB, available: 5 * GiB, swapTotal: 2 * GiB, swapUsed: 0),
        disk: .init(path: "/var/lib/paddock", total: 100 * GiB, free: 40 * GiB), gpus: [gpu])

    static let exception = ExceptionView(id: 9, agent: AgentID(rawValue: 5), type: "launch_failed",
                                         message: "no such file", context: ["path": "/bin/x"],
                                         task: TaskID(rawValue: 34), at: date)

    static let masterInfo = MasterInfo(
        version: "0.1.0", startedAt: date, uptimeSeconds: 60, store: "sqlite", requests: 10, unhandledErrors: 0,
        requestMilliseconds: .init(p50: 1, p90: 2, p99: 5), claims: 3, steals: 1, jobs: 2,
        tasks: TaskCounts([.queued: 1]),
        agents: Dictionary(uniqueKeysWithValues: AgentState.allCases.map { ($0.rawValue, $0 == .online ? 1 : 0) }))

    /// An agent with everything an answer may carry (a host sample, reported exceptions).
    static var fullAgent: AgentView {
        var agent = agent
        agent.metrics = hostMetrics
        agent.exceptions = 2
        agent.address = "10.0.4.17"
        return agent
    }

    static let event = TaskEventView(at: date, transition: .assign, from: .queued, to: .assigned,
                                     agent: AgentID(rawValue: 5), epoch: LeaseEpoch(1), reason: "claimed")

    static let agent = AgentView(
        id: AgentID(rawValue: 5), name: "render-01", state: .online, tags: ["gpu"],
        resources: AgentResources(total: ResourceVector(cpus: 4, ram: 8 * GiB), free: ResourceVector(cpus: 2, ram: 4 * GiB)),
        runningTasks: [TaskID(rawValue: 34)], version: "0.1.0", enrolledAt: date, lastSeen: date)

    static var lease: TaskLease {
        var lease = TaskLease(task: TaskID(rawValue: 34), job: JobID(rawValue: 12), name: "t", epoch: LeaseEpoch(1),
                              command: ["x"], env: ["A": "b"], cwd: "/tmp", requirements: .default, timeout: 30,
                              attempt: 1, prefetched: true)
        lease.progressRegex = #"Fra:(\d+)"#
        lease.frames = "1-10"
        return lease
    }

    /// A talkback command: `full` uses every field (a real command uses only those of its kind).
    static func command(full: Bool) -> AgentCommand {
        full ? AgentCommand(seq: 7, kind: .update, task: TaskID(rawValue: 34), epoch: LeaseEpoch(2), tags: ["gpu"],
                            resources: ResourceVector(cpus: 2), createdAt: date, expiresAt: date.addingTimeInterval(3600))
             : AgentCommand(seq: 1, kind: .ping, createdAt: date, expiresAt: date.addingTimeInterval(3600))
    }
}

@Suite("Wire encoding")
struct WireEncodingTests {
    @Test func pagesAlwaysCarryNext() throws {
        let last = try Wire.string(Page(items: [JobID(rawValue: 1)], next: nil))
        #expect(last == #"{"items":["j1"],"next":null}"#)
        let more = try Wire.string(Page(items: [JobID(rawValue: 1)], next: "1"))
        #expect(more == #"{"items":["j1"],"next":"1"}"#)
        let decoded = try Wire.decode(Page<JobID>.self, #"{"items": ["j1"]}"#)
        #expect(decoded.next == nil)
    }

    /// The public contract: a task has at least `id, job_id, name, state, agent, attempt, exit_code, progress`,
    /// so a queued task says `"agent": null` rather than leaving the field out.
    @Test func aQueuedTaskHasEveryContractField() throws {
        let object = try Wire.object(Samples.task(full: false))
        for key in ["id", "job_id", "name", "state", "agent", "attempt", "exit_code", "progress"] {
            #expect(object.keys.contains(key), "missing \(key)")
        }
        #expect(object["agent"] is NSNull)
        #expect(object["exit_code"] is NSNull)
        #expect(object["id"] as? String == "t34")
        #expect(object["job_id"] as? String == "j12")
        #expect(object["state"] as? String == "queued")
        #expect(object["href"] as? String == "/v1/tasks/t34")
        #expect(object["fits_no_agent"] == nil)
        #expect(object["history"] == nil)
    }

    @Test func tasksRoundTrip() throws {
        for full in [false, true] {
            let task = Samples.task(full: full)
            let again = try Wire.decode(TaskView.self, try Wire.string(task))
            #expect(try Wire.string(again) == (try Wire.string(task)))
        }
        let full = try Wire.object(Samples.task(full: true))
        #expect(full["agent"] as? String == "a5")
        #expect(full["created_at"] as? String == "2025-06-15T15:06:40Z")
        #expect((full["requirements"] as? [String: Any])?["ram"] as? Int == 1 << 30)
    }

    @Test func jobs() throws {
        let object = try Wire.object(Samples.job())
        #expect(object["id"] as? String == "j12")
        #expect(object["task_ids"] as? [String] == ["t1"])
        #expect(object["href"] as? String == "/v1/jobs/j12")
        #expect((object["counts"] as? [String: Int])?["running"] == 1)
        #expect(try Wire.object(Samples.job(taskIDs: nil))["task_ids"] == nil)
        let again = try Wire.decode(JobView.self, try Wire.string(Samples.job()))
        #expect(again.counts == Samples.job().counts)
        #expect(again.createdAt == Samples.date)
        #expect((object["counts"] as? [String: Int])?["blocked"] == 2)
    }

    /// A job's blocklist: agents as prefixed ids with their failure counts; left out when the answer has none.
    @Test func blocklists() throws {
        let object = try Wire.object(Samples.job())
        let entries = try #require(object["blocklist"] as? [[String: Any]])
        #expect(entries.count == 1)
        #expect(entries[0]["agent"] as? String == "a5")
        #expect(entries[0]["failures"] as? Int == 3)
        #expect(try Wire.object(Samples.job(blocklist: nil))["blocklist"] == nil)
        #expect(try Wire.string(BlocklistEntry(agent: AgentID(rawValue: 2), failures: 4)) == #"{"agent":"a2","failures":4}"#)
        let again = try Wire.decode(JobView.self, try Wire.string(Samples.job()))
        #expect(again.blocklist == Samples.job().blocklist)
    }

    @Test func agents() throws {
        let object = try Wire.object(Samples.agent)
        #expect(object["tasks"] as? [String] == ["t34"])
        let resources = try #require(object["resources"] as? [String: Any])
        #expect((resources["total"] as? [String: Any])?["cpus"] as? Double == 4)
        #expect((resources["free"] as? [String: Any])?["ram"] as? Int == 4 << 30)
    }

    /// Host samples: snake_case keys, GPUs with every field (null when unknown), and a round trip.
    @Test func hostMetrics() throws {
        let object = try Wire.object(Samples.hostMetrics)
        #expect(Set(object.keys) == ["at", "cpu", "load", "memory", "disk", "gpus"])
        #expect((object["cpu"] as? [String: Any])?["busy_percent"] as? Double == 37.5)
        #expect((object["memory"] as? [String: Any])?["swap_total"] as? Int == 2 << 30)
        let unknown = HostMetrics.GPU(index: 1, name: "MIG", utilizationPercent: nil, memoryTotal: nil, memoryUsed: nil)
        #expect(try Wire.string(unknown)
            == #"{"index":1,"memory_total":null,"memory_used":null,"name":"MIG","utilization_percent":null}"#)
        #expect(try Wire.decode(HostMetrics.self, try Wire.string(Samples.hostMetrics)) == Samples.hostMetrics)
        #expect(try Wire.decode(HostMetrics.GPU.self, try Wire.string(unknown)) == unknown)
        let agent = try Wire.object(Samples.fullAgent)
        #expect(agent["exceptions"] as? Int == 2)
        #expect((agent["metrics"] as? [String: Any])?["at"] as? String == "2025-06-15T15:06:40Z")
        #expect(try Wire.object(Samples.agent)["metrics"] == nil)
        #expect(try Wire.object(Samples.agent)["exceptions"] as? Int == 0)
        // The address is the master's observation: present when it has one, left out otherwise.
        #expect(agent["address"] as? String == "10.0.4.17")
        #expect(try Wire.object(Samples.agent)["address"] == nil)
    }

    @Test func usageAndExceptions() throws {
        #expect(try Wire.string(Samples.usage)
            == #"{"cpu_seconds":12.5,"peak_rss":536870912,"processes":3,"rss":314572800}"#)
        #expect((try Wire.object(Samples.task(full: true))["usage"] as? [String: Any])?["peak_rss"] as? Int == 512 << 20)
        #expect(try Wire.object(Samples.task(full: false))["usage"] == nil)
        let exception = try Wire.object(Samples.exception)
        #expect(exception["agent"] as? String == "a5" && exception["task"] as? String == "t34")
        var bare = Samples.exception
        bare.task = nil
        #expect(try Wire.object(bare)["task"] == nil)
        let info = try Wire.object(Samples.masterInfo)
        #expect((info["request_ms"] as? [String: Any])?["p99"] as? Double == 5)
        #expect((info["tasks"] as? [String: Int])?.count == TaskState.allCases.count)
        #expect((info["agents"] as? [String: Int])?["online"] == 1)
    }

    @Test func errors() throws {
        let error = PaddockError.invalid("cpus must be a number between 0 and 65536", field: "tasks[0].requirements.cpus")
        #expect(try Wire.string(error)
            == #"{"error":"invalid_request","field":"tasks[0].requirements.cpus","message":"cpus must be a number between 0 and 65536"}"#)
        #expect(try Wire.string(PaddockError.unauthorized) == #"{"error":"unauthorized","message":"missing or invalid bearer token"}"#)
        let decoded = try Wire.decode(PaddockError.self, try Wire.string(error))
        #expect(decoded.code == error.code && decoded.message == error.message && decoded.field == error.field)
    }

    /// What the talkback channel carries: prefixed ids, ISO dates, no nulls for fields a kind does not use,
    /// and a batch the agent decodes back unchanged.
    @Test func talkbackCommands() throws {
        let ping = try Wire.object(Samples.command(full: false))
        #expect(Set(ping.keys) == ["seq", "kind", "created_at", "expires_at"])
        #expect(ping["kind"] as? String == "ping")
        #expect(ping["created_at"] as? String == "2025-06-15T15:06:40Z")
        let update = try Wire.object(Samples.command(full: true))
        #expect(update["task"] as? String == "t34")
        #expect(update["epoch"] as? Int == 2)
        #expect((update["resources"] as? [String: Any])?["cpus"] as? Double == 2)
        let batch = CommandBatch(commands: [Samples.command(full: true), Samples.command(full: false)], last: 7)
        let decoded = try Wire.decode(CommandBatch.self, try Wire.string(batch))
        #expect(decoded.commands == batch.commands && decoded.last == 7)
        #expect(try Wire.string(CommandAccepted(seq: 3)) == #"{"seq":3}"#)
        #expect(try Wire.string(BulkResult(updated: 2)) == #"{"updated":2}"#)
    }

    @Test func errorStatuses() {
        let task = TaskID(rawValue: 3)
        #expect(PaddockError.invalid("x").status == 400)
        #expect(PaddockError.malformed("x").status == 400)
        #expect(PaddockError.unauthorized.status == 401)
        #expect(PaddockError.forbidden("x").status == 403)
        #expect(PaddockError.notFound("task t3").status == 404)
        #expect(PaddockError.staleEpoch(task: task, sent: LeaseEpoch(1), current: LeaseEpoch(2)).status == 409)
        #expect(PaddockError.staleEpoch(task: task, sent: LeaseEpoch(1), current: LeaseEpoch(2)).code == "stale_epoch")
        #expect(PaddockError.illegalTransition(task, from: .succeeded, via: .start).message == "task t3 is succeeded: cannot start it")
        #expect(PaddockError.conflict("x").status == 409)
        #expect(PaddockError.tooLarge("x").status == 413)
        #expect(PaddockError.unavailable("x").status == 503)
    }
}
