import Foundation
import PaddockProtocol

/// The master's scheduling cost, measured with simulated agents (no processes).
extension Measurements {
    /// Claim latency (one slot, no wait) with 1 000, 100 000 and 1 000 000 tasks queued. Each claimed
    /// task is then reported started and finished (untimed), so the agent holds nothing between claims.
    /// Then the master's CPU while it only holds the largest queue.
    static func claimLatency(_ context: BenchContext) async throws -> [Figure] {
        try await withFarm(context, "claims") { farm in
            try await farm.startMaster()
            let agent = try await SimulatedFleet.enroll(1, farm: farm, cpus: 64).agents[0]
            var queued = 0
            var figures: [Figure] = []
            var medians: [Double] = []
            let warmup = 10
            for target in context.sizes.claimQueues {
                var fillSeconds = 0.0
                while queued < target {
                    let batch = min(target - queued, Limits.tasksPerJob)
                    fillSeconds += try await timed {
                        _ = try await farm.admin.submit(json: JobText.frames("queue", count: batch, command: ["true"]))
                    }.1
                    queued += batch
                }
                context.log("    \(grouped(queued)) queued (filled in \(String(format: "%.1f", fillSeconds)) s)")
                try await agent.heartbeat()
                let waiting = queued
                let samples = try await agent.timedClaims(warmup: warmup, samples: context.sizes.claimSamples) { _ in
                    "a claim with \(waiting) queued got nothing"
                }
                queued -= warmup + context.sizes.claimSamples
                let figuresHere = latencyFigures("claim, \(grouped(target)) queued", samples,
                                                 note: "one slot, wait 0, client-side HTTP round trip; after \(warmup) warm-up claims")
                medians.append(figuresHere[0].value)
                figures += figuresHere
            }
            // What the queue costs the master while nothing happens (its sweeper, its tally): before
            // session 27 each second's lease sweep read the whole tasks table.
            guard let pid = farm.masterPID else { throw BenchError("no master pid") }
            let cpu0 = ProcStats.cpuSeconds(pid) ?? .nan
            try await Task.sleep(for: .seconds(context.sizes.queueIdleSeconds))
            let cpu1 = ProcStats.cpuSeconds(pid) ?? .nan
            figures.append(Figure("master CPU, idle with \(grouped(context.sizes.claimQueues.last ?? queued)) queued", (cpu1 - cpu0) / Double(context.sizes.queueIdleSeconds) * 100,
                                  "% of a core", note: "utime+stime over \(context.sizes.queueIdleSeconds) s, no agent asking"))
            if let first = medians.first, let last = medians.last, medians.count > 1,
               let smallest = context.sizes.claimQueues.first, let largest = context.sizes.claimQueues.last {
                figures.append(Figure("claim p50 ratio, \(grouped(largest)) / \(grouped(smallest)) queued", last / first, "×",
                                      note: "1.0 means the claim does not grow with the queue"))
            }
            return figures
        }
    }

    /// Placements per second: simulated agents run each lease instantly, and report its end in the
    /// exchange that claims the next ones (one request per round of `slots` tasks). Twice: the job
    /// alone, then a job that another one waits for (`after`): each finish then looks whether the
    /// job is done, which until session 27 read all its tasks.
    static func placements(_ context: BenchContext) async throws -> [Figure] {
        try await placements(context, waitedFor: false) + placements(context, waitedFor: true)
    }

    static func placements(_ context: BenchContext, waitedFor: Bool) async throws -> [Figure] {
        let count = context.sizes.placementTasks
        let agentCount = context.sizes.placementAgents
        let slots = 4
        return try await withFarm(context, waitedFor ? "placements-after" : "placements") { farm in
            try await farm.startMaster()
            let fleet = try await SimulatedFleet.enroll(agentCount, farm: farm, cpus: Double(slots))
            let job = try await farm.admin.submit(json: JobText.frames("placements", count: count, command: ["true"]))
            if waitedFor {
                // Paused: it waits, and takes no slot from the figure once the frames are done.
                let waiting = try await farm.admin.submit(json: try JobText.oneTask("after", command: ["true"], after: job.id))
                let _: JobView = try await farm.admin.call("POST", APIPath.job(waiting.id) + "/pause")
            }
            for agent in fleet.agents { try await agent.heartbeat() }
            let tally = Tally(target: count)
            let start = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for agent in fleet.agents {
                    group.addTask {
                        // Heartbeats keep the agent online (an agent silent past the lease timeout claims nothing).
                        var lastBeat = ContinuousClock.now
                        var held: [TaskLease] = []
                        while !(await tally.done) {
                            if ContinuousClock.now - lastBeat > .seconds(5) {
                                try await agent.heartbeat()
                                lastBeat = .now
                            }
                            if ContinuousClock.now - start > .seconds(600) { throw BenchError("placements: over 600 s") }
                            let finished = held
                            held = try await agent.exchange(finished: finished, slots: slots, wait: 1)
                            await tally.add(finished.count)
                        }
                        if !held.isEmpty { _ = try await agent.exchange(finished: held, slots: 0, wait: 0) }
                    }
                }
                try await group.waitForAll()
            }
            guard let end = await tally.reachedAt else { throw BenchError("placements never reached \(count)") }
            let seconds = (end - start).seconds
            let label = waitedFor ? ", a job waiting for them" : ""
            return [Figure("placements (exchange: finish + claim), \(agentCount) simulated agents\(label)", Double(count) / seconds,
                           "tasks/s", note: "\(grouped(count)) tasks, claims of \(slots) slots; one request per \(slots) tasks")]
        }
    }

    /// Submit throughput: one job of 100 000 tasks (a frame template), no agents.
    static func submitThroughput(_ context: BenchContext) async throws -> [Figure] {
        let count = context.sizes.submitTasks
        let seconds = try await withFarm(context, "submit") { farm in
            try await farm.startMaster()
            return try await timed {
                let job = try await farm.admin.submit(json: JobText.frames("big", count: count, command: ["true"]))
                guard job.counts.total == count else { throw BenchError("the job has \(job.counts.total) tasks, not \(count)") }
            }.1
        }
        return [
            Figure("submit one \(grouped(count))-task job", Double(count) / seconds, "tasks/s",
                   note: "one POST /v1/jobs (frame template), client-side wall time"),
            Figure("submit, per task", seconds / Double(count) * 1000, "ms/task"),
        ]
    }
}

/// 1000000 → "1 000 000".
func grouped(_ value: Int) -> String {
    let digits = Array(String(value))
    var out = ""
    for (index, digit) in digits.enumerated() {
        if index > 0, (digits.count - index) % 3 == 0 { out.append(" ") }
        out.append(digit)
    }
    return out
}
