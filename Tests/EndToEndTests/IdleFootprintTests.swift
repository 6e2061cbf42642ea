import Foundation
import PaddockProtocol
import Testing

/// `paddock agent`, once idle, drops its code pages from its resident set, and runs tasks as before.
extension EndToEnd { @Suite struct IdleFootprintTests {
    @Test func anIdleAgentReleasesItsCodePagesAndStillRunsTasks() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("lean", ["--slots", "2", "--log-level", "debug"])
        let line = try await farm.waitForLine(in: farm.dir + "/lean.log", containing: "idle agent: released")
        // "... resident 39000 kB → 12000 kB"
        let figures = line.split(separator: "resident").last?.split(separator: " ").compactMap { Int($0) } ?? []
        try #require(figures.count == 2, "\(line)")
        #expect(figures[1] < figures[0], "the release lowered the resident set: \(line)")

        let job = try await farm.submit(JobSubmission(name: "after", tasks: (0..<6).map { shell("echo ran \($0)", name: "t\($0)") }))
        let tasks = try await farm.waitForJob(job.id)
        #expect(tasks.count == 6)
        #expect(tasks.allSatisfy { $0.state == .succeeded }, "\(tasks.map(\.state))")
        for task in tasks {
            let log = try await farm.logs(task.id)
            #expect(log.contains("ran \(task.name.dropFirst())"), "\(task.name): \(log)")
        }
    }
} }
