import Foundation
import PaddockProtocol
import Testing

/// `paddock agent`, once idle, drops its code pages from its resident set, and runs tasks as before.
extension EndToEnd { @Suite struct IdleFootprintTests {
    @Test func anIdleAgentReleasesItsCodePagesAndStillRunsTasks() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("lean", ["--slots", "2", "--log-level", "debug"])
        let figures = try await firstRelease(farm, "lean")
        #expect(figures.after < figures.before, "the release lowered the resident set: \(figures)")

        let job = try await farm.submit(JobSubmission(name: "after", tasks: (0..<6).map { shell("echo ran \($0)", name: "t\($0)") }))
        let tasks = try await farm.waitForJob(job.id)
        #expect(tasks.count == 6)
        #expect(tasks.allSatisfy { $0.state == .succeeded }, "\(tasks.map(\.state))")
        for task in tasks {
            let log = try await farm.logs(task.id)
            #expect(log.contains("ran \(task.name.dropFirst())"), "\(task.name): \(log)")
        }
    }

    /// Start-up runs on past the agent's first heartbeat (its launcher's warm children, its first
    /// exchange): the first release waits until the agent holds its long-poll, and what start-up
    /// mapped does not come back. (Released at the first beat, the resident set grew back by about
    /// half of what was released, until the next look: a heartbeat interval, 10 s with these leases.)
    @Test func anIdleAgentsFirstReleaseComesOnceItsStartUpIsOver() async throws {
        let farm = try Farm(leaseTimeout: "30s")
        try await farm.startMaster()
        try farm.startAgent("settled", ["--slots", "2", "--log-level", "debug"])
        // Start-up is over once the agent holds its long-poll (as the line says, just before it sends it).
        _ = try await farm.waitForLine(in: farm.dir + "/settled.log", containing: "holding a long-poll")
        let figures = try await firstRelease(farm, "settled")
        let pid = try #require(farm.pid("settled"))
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let rss = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
            .flatMap { $0.split(separator: " ").compactMap { Int($0) }.first }, "\(status)")
        #expect(rss - figures.after < (figures.before - figures.after) / 4,
                "resident \(rss) kB after a release of \(figures.before) kB → \(figures.after) kB")
    }

    /// The resident set before and after the agent's first release, in kB, from its debug log line
    /// ("idle agent: released 36 clean mappings; resident 39000 kB → 12000 kB").
    private func firstRelease(_ farm: Farm, _ agent: String) async throws -> (before: Int, after: Int) {
        let line = try await farm.waitForLine(in: farm.dir + "/\(agent).log", containing: "idle agent: released")
        let figures = line.split(separator: "resident").last?.split(separator: " ").compactMap { Int($0) } ?? []
        try #require(figures.count == 2, "\(line)")
        return (figures[0], figures[1])
    }
} }
