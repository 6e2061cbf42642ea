import Foundation
import PaddockClient
import PaddockProtocol
import Testing

/// Host metrics ride on heartbeats and are served by the master (issue: metrics).
extension EndToEnd { @Suite struct HostMetricsTests {
    @Test func reportedMetricsMatchTheHostAndCPURisesWhileATaskSpins() async throws {
        let farm = try Farm(leaseTimeout: "1.5s")  // a heartbeat every 0.5 s
        try await farm.startMaster()
        try farm.startAgent("probe", ["--cpus", "1", "--ram", "1GiB"])
        try await eventually("a first sample", timeout: 20) { try await farm.agent(named: "probe")?.metrics != nil }
        let agent = try #require(try await farm.agent(named: "probe"))
        let metrics = try #require(agent.metrics)

        let meminfo = try String(contentsOfFile: "/proc/meminfo", encoding: .utf8)
        let memTotalKiB = try #require(meminfo.split(separator: "\n").first { $0.hasPrefix("MemTotal:") }?
            .split(separator: " ").dropFirst().first.flatMap { Int64($0) })
        #expect(metrics.memory.total == memTotalKiB * 1024)
        var fs = statvfs()
        #expect(statvfs(farm.dir + "/probe", &fs) == 0)
        #expect(metrics.disk.total == Int64(fs.f_blocks) * Int64(fs.f_frsize))
        #expect(metrics.cpu.cores == ProcessInfo.processInfo.activeProcessorCount || metrics.cpu.cores > 0)

        let job = try await farm.submit(JobSubmission(name: "spin", maxAttempts: 1, tasks: [
            TaskSpec(name: "spin", command: ["sh", "-c", "end=$(($(date +%s) + 4)); while [ $(date +%s) -lt $end ]; do :; done"]),
        ]))
        let share = 100 / Double(max(1, metrics.cpu.cores))
        try await eventually("CPU busy rises while the task spins a core", timeout: 20) {
            guard let now = try await farm.agent(named: "probe")?.metrics else { return false }
            return now.cpu.busyPercent >= 0.6 * share
        }
        let tasks = try await farm.waitForJob(job.id, timeout: 30)
        #expect(tasks.map(\.state) == [.succeeded])
        let usage = try #require(tasks[0].usage)
        #expect(usage.cpuSeconds > 1, "the spinning task's CPU time: \(usage.cpuSeconds)")
        #expect(usage.peakRSS > 0)

        let series: Page<HostMetrics> = try await farm.admin.call("GET", APIPath.metrics(agent.id), query: ["since": "600"])
        #expect(!series.items.isEmpty)
        #expect(series.items.map(\.at) == series.items.map(\.at).sorted())
    }
} }
