import Foundation
import PaddockMaster
import PaddockProtocol
import Testing

/// The store's two reads for the dashboard (issue 17), on SQLite and on a real PostgreSQL.
@Suite struct DashboardStoreTests {
    let now = Date()
    var later: Date { now.addingTimeInterval(600) }

    @Test(arguments: Backend.allCases)
    func aJobsGraphIsItsDependenciesAndTheJobsItRunsAfter(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let first = try await store.submit(JobSubmission(name: "diamond", tasks: [
            TaskSpec(name: "a", command: ["true"]),
            TaskSpec(name: "b", command: ["true"], dependsOn: ["a"]),
            TaskSpec(name: "c", command: ["true"], dependsOn: ["a"]),
            TaskSpec(name: "d", command: ["true"], dependsOn: ["c", "b"]),
        ]), owner: "alice", now: now)
        let t = try #require(first.taskIDs)
        var second = JobSubmission(name: "after", tasks: [TaskSpec(name: "x", command: ["true"])])
        second.after = [first.id]
        let after = try await store.submit(second, owner: "alice", now: now)

        let graph = try await store.jobGraph(first.id)
        #expect(graph.edges == [[t[0], t[1]], [t[0], t[2]], [t[1], t[3]], [t[2], t[3]]])
        #expect(graph.after.isEmpty && !graph.truncated)
        let other = try await store.jobGraph(after.id)
        #expect(other.edges.isEmpty && other.after == [first.id])
        do {
            _ = try await store.jobGraph(JobID(rawValue: 999))
            Issue.record("an unknown job has no graph")
        } catch let error as PaddockError {
            #expect(error.status == 404)
        }
    }

    /// A run that ended in a minute's last half second counts in that minute (PostgreSQL's CAST to an
    /// integer rounds to the nearest: it was counted in the next one, or past the window's end).
    @Test(arguments: Backend.allCases)
    func aRunEndedLateInAMinuteCountsInThatMinute(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let minute = (Date().timeIntervalSince1970 / 60).rounded(.down) * 60
        let end = Date(timeIntervalSince1970: minute + 59.75)
        let agent = try await store.enroll(EnrollRequest(name: "a", resources: ResourceVector(cpus: 8, ram: 8 << 30), tags: [],
                                                         version: "t"), credential: "cred-a", now: end)
        _ = try await store.submit(JobSubmission(name: "j", tasks: [TaskSpec(name: "t", command: ["true"])]), owner: "alice", now: end)
        let lease = try #require(try await store.claim(ClaimOrder(agent: agent, slots: 1, leaseUntil: end.addingTimeInterval(600),
                                                                  now: end)).leases.first)
        _ = try await store.start(task: lease.task, agent: agent, epoch: lease.epoch, leaseUntil: end.addingTimeInterval(600), now: end)
        _ = try await store.finish(task: lease.task, agent: agent, report: FinishReport(epoch: lease.epoch, outcome: .succeeded, exitCode: 0),
                                   now: end)
        let counted = try await store.throughput(since: Date(timeIntervalSince1970: minute - 59 * 60), bucketSeconds: 60, buckets: 60)
        #expect(counted.succeeded[59] == 1, "\(counted.succeeded)")
    }

    @Test(arguments: Backend.allCases)
    func throughputCountsEndedRunsPerMinute(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let agent = try await store.enroll(EnrollRequest(name: "a", resources: ResourceVector(cpus: 8, ram: 8 << 30), tags: [],
                                                         version: "t"), credential: "cred-a", now: now)
        _ = try await store.submit(JobSubmission(name: "j", maxAttempts: 2, tasks: (0..<3).map {
            TaskSpec(name: "t\($0)", command: ["true"])
        }), owner: "alice", now: now)
        let leases = try await store.claim(ClaimOrder(agent: agent, slots: 3, leaseUntil: later, now: now)).leases
        #expect(leases.count == 3)
        // Runs end at now, one at now - 10 min (a failed attempt that is retried), one twice... spread over minutes.
        let ends = [now, now, now.addingTimeInterval(-600)]
        for (index, lease) in leases.enumerated() {
            _ = try await store.start(task: lease.task, agent: agent, epoch: lease.epoch, leaseUntil: later, now: ends[index])
            let outcome: TaskOutcome = index == 1 ? .failed : .succeeded
            _ = try await store.finish(task: lease.task, agent: agent,
                                       report: FinishReport(epoch: lease.epoch, outcome: outcome, exitCode: index == 1 ? 1 : 0),
                                       now: ends[index])
        }
        let since = Date(timeIntervalSince1970: (now.timeIntervalSince1970 / 60).rounded(.down) * 60 - 59 * 60)
        let counted = try await store.throughput(since: since, bucketSeconds: 60, buckets: 60)
        #expect(counted.since == since && counted.bucketSeconds == 60)
        #expect(counted.succeeded.count == 60 && counted.failed.count == 60)
        #expect(counted.succeeded[59] == 1, "one run succeeded this minute: \(counted.succeeded)")
        #expect(counted.failed[59] == 1, "one failed attempt (retried) this minute: \(counted.failed)")
        let tenMinutesAgo = Int((now.addingTimeInterval(-600).timeIntervalSince1970 - since.timeIntervalSince1970) / 60)
        #expect(counted.succeeded[tenMinutesAgo] == 1, "\(counted.succeeded)")
        #expect(counted.succeeded.reduce(0, +) == 2 && counted.failed.reduce(0, +) == 1)
        // Nothing before the window counts.
        let empty = try await store.throughput(since: now.addingTimeInterval(120), bucketSeconds: 60, buckets: 60)
        #expect(empty.succeeded.allSatisfy { $0 == 0 } && empty.failed.allSatisfy { $0 == 0 })
    }
}
