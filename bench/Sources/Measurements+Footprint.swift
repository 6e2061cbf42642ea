import Foundation
import PaddockProtocol

/// Memory and CPU of idle processes, and of a master holding thousands of idle agents' long-polls.
extension Measurements {
    static func footprint(_ context: BenchContext) async throws -> [Figure] {
        var figures = try await withFarm(context, "idle") { farm in
            try await farm.startMaster()
            try await Task.sleep(for: .seconds(context.sizes.quietSeconds))
            let master = farm.masterPID.flatMap(ProcStats.rss)
            try await farm.startAgent("agent", slots: 2)
            try await Task.sleep(for: .seconds(context.sizes.quietSeconds))
            let agent = farm.pid("agent").flatMap(ProcStats.rss)
            return [
                Figure("master RSS, idle, no agents", mib(master), "MiB"),
                Figure("agent RSS, idle", mib(agent), "MiB", note: "one real agent, long-polls open, no tasks"),
            ]
        }
        figures += try await crowd(context)
        return figures
    }

    /// N simulated agents, each holding one exchange long-poll (its claim and its talkback, 50 s) and
    /// heartbeating every 60 s, like a real idle agent; the master's CPU is measured over a window.
    static func crowd(_ context: BenchContext) async throws -> [Figure] {
        let count = context.sizes.idleAgents
        return try await withFarm(context, "crowd") { farm in
            try await farm.startMaster()
            guard let pid = farm.masterPID else { throw BenchError("no master pid") }
            let (fleet, enrollSeconds) = try await timed { try await SimulatedFleet.enroll(count, farm: farm, concurrency: 32) }
            context.log("    \(count) agents enrolled in \(String(format: "%.1f", enrollSeconds)) s")
            let state = CrowdState()
            let tasks = IdleCrowd.start(fleet.agents, port: farm.port, state: state)
            try await Task.sleep(for: .seconds(context.sizes.settleSeconds))
            context.log("    \(tasks) client tasks; measuring \(context.sizes.idleWindowSeconds) s")
            let requests0 = try await farm.admin.masterInfo().requests
            let cpu0 = ProcStats.cpuSeconds(pid) ?? .nan
            let window = try await timed { try await Task.sleep(for: .seconds(context.sizes.idleWindowSeconds)) }.1
            let cpu1 = ProcStats.cpuSeconds(pid) ?? .nan
            let requests1 = try await farm.admin.masterInfo().requests
            let files = ProcStats.openFiles(pid) ?? 0
            let rss = ProcStats.rss(pid)
            let peak = ProcStats.peakRSS(pid)
            let herd = try await newWorkAmongTheCrowd(farm, pid: pid, crowd: state, jobs: context.sizes.herdJobs)
            let (errors, lastError) = state.failures
            state.stop()
            farm.stop()  // kills the master (the crowd's tasks were cancelled already)
            try await until("the crowd's tasks end", timeout: 30, every: 0.1) { state.endedTasks >= tasks }
            return [
                Figure("master RSS, \(grouped(count)) idle agents long-polling", mib(rss), "MiB",
                       note: "simulated agents: claim (50 s) and talkback (50 s) long-polls, heartbeat every 60 s"),
                Figure("master peak RSS, \(grouped(count)) agents", mib(peak), "MiB", note: "VmHWM: includes enrolling them"),
                Figure("master CPU, \(grouped(count)) idle agents", (cpu1 - cpu0) / window * 100, "% of a core",
                       note: "utime+stime over \(Int(window)) s; \(errors) failed requests\(lastError.map { " (last: \($0.prefix(120)))" } ?? "")"),
                Figure("master requests/s, \(grouped(count)) idle agents", Double(requests1 - requests0) / window, "req/s",
                       note: "heartbeats and long-poll renewals"),
                Figure("master open fds, \(grouped(count)) agents", Double(files), "fds", note: "≈ connections held"),
                Figure("enroll \(grouped(count)) agents", Double(count) / enrollSeconds, "agents/s", note: "32 in flight"),
                Figure("claim wake-ups per new task, \(grouped(count)) idle agents", herd.wakeups, "claims",
                       note: "paddock_claim_wakeups_total over \(context.sizes.herdJobs) one-task jobs, one at a time"),
                Figure("claim handoffs per new task, \(grouped(count)) idle agents", herd.handoffs, "claims",
                       note: "paddock_claim_handoffs_total: held claims leased to in the submission's own transaction"),
                Figure("master CPU per new task, \(grouped(count)) idle agents", herd.cpuMilliseconds, "ms",
                       note: "the submission and the claims it woke or leased to (and the crowd's own traffic meanwhile)"),
                Figure("new task to lease p50, \(grouped(count)) idle agents", herd.leaseMilliseconds, "ms",
                       note: "submit call until a held exchange of the crowd brings its lease"),
            ]
        }
    }

    /// One-task jobs submitted one at a time among the held crowd, each waited for until a held
    /// exchange brings its lease (the crowd counts them; the master is not polled): how many held
    /// claims each wakes (one, where wake-ups are directed; every agent where broadcast) or leases to in
    /// its own transaction (a handoff), the master's CPU per task, and the time to its lease. A count
    /// is NaN on a master without its counter.
    static func newWorkAmongTheCrowd(_ farm: Farm, pid: Int32, crowd: CrowdState, jobs: Int)
        async throws -> (wakeups: Double, handoffs: Double, cpuMilliseconds: Double, leaseMilliseconds: Double) {
        let admin = farm.admin
        /// The held claims woken and those handed leases by a submission, so far.
        func counted() async -> (wakeups: Double, handoffs: Double) {
            guard let text = try? await admin.raw("GET", "/metrics") else { return (.nan, .nan) }
            let lines = String(decoding: text, as: UTF8.self).split(separator: "\n")
            func counter(_ name: String) -> Double {
                lines.first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") } ?? .nan
            }
            return (counter("paddock_claim_wakeups_total"), counter("paddock_claim_handoffs_total"))
        }
        let counted0 = await counted()
        let cpu0 = ProcStats.cpuSeconds(pid) ?? .nan
        var leases: [Double] = []
        let leased0 = crowd.leases
        for index in 0..<jobs {
            let (_, seconds) = try await timed {
                _ = try await admin.submit(json: JobText.frames("herd-\(index)", count: 1, command: ["/bin/true"]))
                try await until("the new task leased", timeout: 60, every: 0.0005) { crowd.leases >= leased0 + index + 1 }
            }
            leases.append(seconds * 1000)
        }
        let cpu1 = ProcStats.cpuSeconds(pid) ?? .nan
        let counted1 = await counted()
        return ((counted1.wakeups - counted0.wakeups) / Double(jobs), (counted1.handoffs - counted0.handoffs) / Double(jobs),
                (cpu1 - cpu0) * 1000 / Double(jobs), Percentile.median(leases) ?? .nan)
    }

    static func mib(_ bytes: Int64?) -> Double { bytes.map { Double($0) / 1_048_576 } ?? .nan }
}
