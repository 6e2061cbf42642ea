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

    @Test func sigtermOnAFullAgentExitsWithinTenSecondsAndGivesItsTaskBack() async throws {
        let farm = try Farm(leaseTimeout: "30s")
        try await farm.startMaster()
        try farm.startAgent("busy", ["--cpus", "1", "--ram", "1GiB"])
        try await eventually("busy online", timeout: 20) { try await farm.agent(named: "busy")?.state == .online }
        // One task runs (a shell that ignores SIGTERM: only the kill grace's SIGKILL ends it), one waits.
        let job = try await farm.submit(JobSubmission(name: "long", tasks: [
            shell("trap '' TERM; sleep 300 & wait; sleep 300", name: "stubborn"), shell("sleep 300", name: "next"),
        ]))
        try await eventually("a task runs", timeout: 20) {
            try await farm.tasks(job: job.id).contains { $0.state == .running }
        }
        let took = try await farm.terminate("busy", within: .seconds(30))
        let elapsed = try #require(took, "the agent still ran 30 s after SIGTERM")
        #expect(elapsed < .seconds(10), "SIGTERM took \(elapsed)")
        let tasks = try await farm.tasks(job: job.id)
        #expect(tasks.allSatisfy { $0.state == .queued }, "\(tasks.map(\.state))")
        #expect(tasks.allSatisfy { $0.attempt == 0 }, "given back: no attempt used \(tasks.map(\.attempt))")
        let stubborn = try #require(tasks.first { $0.name == "stubborn" })
        let history = try await farm.task(stubborn.id).history ?? []
        #expect(history.last?.transition == .release, "\(history.map(\.transition))")
        #expect(try await farm.agent(named: "busy")?.state == .offline)
    }
} }
