import Foundation
import PaddockProtocol

/// End-to-end throughput with real agents running real child processes.
extension Measurements {
    /// N × /bin/true, each its own submission and as one bulk job, on one agent with 2 and with 16 slots.
    static func throughput(_ context: BenchContext) async throws -> [Figure] {
        var figures: [Figure] = []
        let count = context.sizes.trueTasks
        for slots in [2, 16] {
            for bulk in [false, true] {
                let (seconds, cpu) = try await withFarm(context, "true-\(slots)-\(bulk ? "bulk" : "single")") { farm in
                    try await farm.startMaster()
                    try await farm.startAgent("agent", slots: slots, prefetch: context.agentPrefetch)
                    let processes = [farm.masterPID, farm.pid("agent"), getpid()]
                    let cpuNow = { processes.map { $0.flatMap(ProcStats.cpuSeconds) ?? .nan } }
                    let before = cpuNow()
                    let seconds = try await timed {
                        if bulk {
                            _ = try await farm.admin.submit(json: JobText.frames("bulk", count: count, command: ["/bin/true"]))
                        } else {
                            try await submitSingles(farm.admin, count: count, command: ["/bin/true"], concurrency: 8)
                        }
                        try await farm.waitForSucceeded(count, timeout: 600)
                    }.1
                    return (seconds, zip(before, cpuNow()).map { ($1 - $0) / Double(count) * 1000 })
                }
                let mode = bulk ? "one bulk job" : "each its own job"
                let row = "/bin/true × \(count), \(slots) slots, \(mode)"
                figures.append(Figure(row, Double(count) / seconds, "tasks/s",
                                      note: "first submit to last success seen (master polled every 10 ms); one real agent, prefetch \(context.agentPrefetch)"))
                // Where the machine's time goes, per task: unlike tasks/s, hardly moved by the machine's
                // fast and slow phases (/proc's user + system time, 10 ms ticks).
                for (index, process) in ["master", "agent", "bench client"].enumerated() {
                    figures.append(Figure("\(row): CPU per task, \(process)", cpu[index], "ms",
                                          note: "its user + system CPU from first submit to last success seen, over the tasks (the agent's children not included)"))
                }
            }
        }
        return figures
    }

    /// N × `sleep 0.1` on 16 slots: wall time against the ideal N × 0.1 / 16.
    static func sleepWall(_ context: BenchContext) async throws -> [Figure] {
        let count = context.sizes.sleepTasks
        let slots = 16
        let ideal = Double(count) * 0.1 / Double(slots)
        let seconds = try await withFarm(context, "sleep") { farm in
            try await farm.startMaster()
            try await farm.startAgent("agent", slots: slots)
            return try await timed {
                _ = try await farm.admin.submit(json: JobText.frames("sleep", count: count, command: ["sleep", "0.1"]))
                try await farm.waitForSucceeded(count, timeout: 600)
            }.1
        }
        return [
            Figure("sleep 0.1 × \(count), 16 slots: wall", seconds, "s", note: "ideal \(ideal) s"),
            Figure("sleep 0.1 × \(count), 16 slots: ideal / wall", ideal / seconds * 100, "%"),
        ]
    }

    /// Submits `count` one-task jobs, `concurrency` submissions in flight, each answered with its ids
    /// alone (`Prefer: return=minimal`), as a script submitting many jobs would ask.
    static func submitSingles(_ admin: Wire, count: Int, command: [String], concurrency: Int) async throws {
        let argv = command.map { "\"\($0)\"" }.joined(separator: ",")
        let text = #"{"name":"single","tasks":[{"name":"t","command":[\#(argv)]}]}"#
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            while next < min(concurrency, count) {
                next += 1
                group.addTask { _ = try await admin.submitMinimal(json: text) }
            }
            while try await group.next() != nil {
                if next < count {
                    next += 1
                    group.addTask { _ = try await admin.submitMinimal(json: text) }
                }
            }
        }
    }
}
