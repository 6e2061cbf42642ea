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
                let seconds = try await withFarm(context, "true-\(slots)-\(bulk ? "bulk" : "single")") { farm in
                    try await farm.startMaster()
                    try await farm.startAgent("agent", slots: slots, prefetch: context.agentPrefetch)
                    return try await timed {
                        if bulk {
                            _ = try await farm.admin.submit(json: JobText.frames("bulk", count: count, command: ["/bin/true"]))
                        } else {
                            try await submitSingles(farm.admin, count: count, command: ["/bin/true"], concurrency: 8)
                        }
                        try await farm.waitForSucceeded(count, timeout: 600)
                    }.1
                }
                let mode = bulk ? "one bulk job" : "each its own job"
                figures.append(Figure("/bin/true × \(count), \(slots) slots, \(mode)", Double(count) / seconds, "tasks/s",
                                      note: "first submit to last success seen (master polled every 10 ms); one real agent, prefetch \(context.agentPrefetch)"))
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

    /// Submits `count` one-task jobs, `concurrency` submissions in flight.
    static func submitSingles(_ admin: Wire, count: Int, command: [String], concurrency: Int) async throws {
        let argv = command.map { "\"\($0)\"" }.joined(separator: ",")
        let text = #"{"name":"single","tasks":[{"name":"t","command":[\#(argv)]}]}"#
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            while next < min(concurrency, count) {
                next += 1
                group.addTask { _ = try await admin.submit(json: text) }
            }
            while try await group.next() != nil {
                if next < count {
                    next += 1
                    group.addTask { _ = try await admin.submit(json: text) }
                }
            }
        }
    }
}
