import Foundation
import PaddockClient
import PaddockProtocol
import Testing

/// The agent exchange with real processes: a master killed with SIGKILL while an agent streams
/// short tasks through it (some kills fall between a group commit and its answers).
extension EndToEnd { @Suite struct ExchangeEndToEndTests {
    @Test func aMasterKilledMidStreamLosesNothingAndRunsNothingTwice() async throws {
        // Leases long enough that a busy machine's heartbeats renew them across each restart: what is
        // checked is the exchange's resends, not the sweeper.
        let farm = try Farm(leaseTimeout: "10s")
        try await farm.startMaster()
        let ledger = farm.dir + "/ledger"
        try farm.startAgent("worker", ["--cpus", "4", "--slots", "4", "--ram", "2GiB", "--prefetch", "4"])
        try await eventually("worker online", timeout: 20) { try await farm.agent(named: "worker")?.state == .online }
        let count = 600
        let job = try await farm.submit(JobSubmission(name: "stream", tasks: (0..<count).map {
            shell("echo $PADDOCK_TASK_ID >> \(ledger); sleep 0.02", name: "s\($0)", cpus: 0.5)
        }))
        var kills = 0
        for threshold in [100, 250, 400] {
            try await eventually("\(threshold) succeeded", timeout: 120) {
                try await farm.job(job.id).counts[.succeeded] >= threshold
            }
            if try await farm.job(job.id).counts[.succeeded] >= count - 50 { break }
            farm.kill9("master")
            kills += 1
            try await farm.startMaster()
        }
        #expect(kills > 0, "the run ended before the master could be killed: make the tasks longer")
        let tasks = try await farm.waitForJob(job.id, timeout: 180)
        #expect(tasks.count == count)
        #expect(tasks.allSatisfy { $0.state == .succeeded }, "\(Dictionary(grouping: tasks, by: \.state).mapValues(\.count))")
        // Finished once each: one success in every history (an acknowledged finish is never lost, a
        // resent one never counts twice).
        var finishedTwice: [TaskID] = []
        for task in tasks {
            let history = try await farm.task(task.id).history ?? []
            if history.filter({ $0.transition == .succeed }).count != 1 { finishedTwice.append(task.id) }
        }
        #expect(finishedTwice.isEmpty, "\(finishedTwice)")
        // Ran once each: a lease whose answer died with the master was never started by the agent.
        let ids = try String(contentsOfFile: ledger, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(Set(ids).count == count)
        #expect(ids.count == count, "ran twice: \(Dictionary(grouping: ids, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted())")
    }
} }
