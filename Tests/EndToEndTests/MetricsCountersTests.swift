import Foundation
import PaddockClient
import PaddockProtocol
import PaddockTestSupport
import Testing

/// `/metrics` from counters kept as the rows change (issue 16): right after submissions, claims,
/// finishes, a cancel and a retry, and after the master restarts, against the tasks as listed.
extension EndToEnd { @Suite struct MetricsCountersTests {
    @Test func taskGaugesFollowEveryTransition() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        let first = try await farm.submit(JobSubmission(name: "first", tasks: [shell("true"), shell("true"), shell("true")]))
        var after = JobSubmission(name: "after", tasks: [shell("true")])
        after.after = [first.id]
        _ = try await farm.submit(after)
        _ = try await farm.submit(JobSubmission(name: "huge", tasks: [shell("true", cpus: 64)]))
        try await expectGauges(farm, [.queued: 4, .blocked: 1])

        try farm.startAgent("worker", ["--cpus", "2"])
        try await eventually("four tasks succeeded", timeout: 60) { try await listed(farm)[.succeeded] == 4 }
        try await expectGauges(farm, [.succeeded: 4, .queued: 1])

        var failing = JobSubmission(name: "failing", tasks: [shell("exit 3")])
        failing.maxAttempts = 1
        let failed = try await farm.submit(failing)
        _ = try await farm.waitForJob(failed.id, timeout: 60)
        try await expectGauges(farm, [.succeeded: 4, .queued: 1, .failed: 1])

        let huge = try #require(try await listedTasks(farm).first { $0.state == .queued })
        let _: TaskView = try await farm.admin.call("POST", APIPath.task(huge.id, "cancel"))
        try await expectGauges(farm, [.succeeded: 4, .failed: 1, .cancelled: 1])

        let failedTask = try #require(try await farm.tasks(job: failed.id).first)
        let _: TaskView = try await farm.admin.call("POST", APIPath.task(failedTask.id, "retry"))
        _ = try await farm.waitForJob(failed.id, timeout: 60)
        try await eventually("the retried task failed again", timeout: 60) { try await farm.task(failedTask.id).state == .failed }
        try await expectGauges(farm, [.succeeded: 4, .failed: 1, .cancelled: 1])

        // Counted again from the rows when the master starts.
        farm.kill9("master")
        try await farm.startMaster()
        try await expectGauges(farm, [.succeeded: 4, .failed: 1, .cancelled: 1])
    }

    /// Every task of every job, as the API lists them.
    private func listedTasks(_ farm: Farm) async throws -> [TaskView] {
        let page: Page<TaskView> = try await farm.admin.call("GET", APIPath.tasks, query: ["limit": "1000"])
        return page.items
    }

    private func listed(_ farm: Farm) async throws -> [TaskState: Int] {
        Dictionary(grouping: try await listedTasks(farm), by: \.state).mapValues(\.count)
    }

    /// The `paddock_tasks` gauges of `/metrics`, and the text they were read from.
    private func gauges(_ farm: Farm) async throws -> (gauges: [TaskState: Int], text: String) {
        let text = String(decoding: try await MasterClient(baseURL: try #require(URL(string: farm.url)), token: "")
            .raw("GET", "/metrics"), as: UTF8.self)
        var gauges: [TaskState: Int] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("paddock_tasks{state=\"") {
            let state = line.dropFirst("paddock_tasks{state=\"".count).prefix { $0 != "\"" }
            if let state = TaskState(rawValue: String(state)), let value = line.split(separator: " ").last.flatMap({ Double($0) }) {
                gauges[state] = Int(value)
            }
        }
        return (gauges, text)
    }

    /// The gauges of `/metrics` (those not named are 0) equal `expected` and the tasks as listed. A
    /// write's change reaches the counters just after its commit: a scrape may be a moment behind.
    private func expectGauges(_ farm: Farm, _ expected: [TaskState: Int],
                              sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let wanted = Dictionary(uniqueKeysWithValues: TaskState.allCases.map { ($0, expected[$0] ?? 0) })
        try? await eventually("the gauges read \(wanted)", timeout: 10) {
            let read = try await self.gauges(farm).gauges
            return TaskState.allCases.allSatisfy { (read[$0] ?? 0) == wanted[$0] }
        }
        let (gauges, text) = try await self.gauges(farm)
        let counted = try await listed(farm)
        for state in TaskState.allCases {
            #expect(gauges[state] == expected[state] ?? 0, "\(state.rawValue): /metrics says \(gauges[state] ?? -1)\n\(text)",
                    sourceLocation: sourceLocation)
            #expect(counted[state] ?? 0 == expected[state] ?? 0, "\(state.rawValue): listed \(counted[state] ?? 0)",
                    sourceLocation: sourceLocation)
        }
    }
} }
