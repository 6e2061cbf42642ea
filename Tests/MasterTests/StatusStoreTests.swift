import Foundation
import PaddockMaster
import PaddockProtocol
import Testing

/// Issue 18 in the store, on SQLite and on a real PostgreSQL: a task's status (kept in its history,
/// no column of its own) and attribute tags (`any:NAME:V1:V2`) in claims.
@Suite struct StatusStoreTests {
    let now = Date()
    var later: Date { now.addingTimeInterval(600) }

    @Test(arguments: Backend.allCases)
    func statusAndAttributesOnEitherEngine(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let agent = try await store.enroll(EnrollRequest(name: "a", resources: ResourceVector(cpus: 4, ram: 8 << 30),
                                                         tags: ["os.family:linux", "cpu.arch:x86_64"], version: "t"),
                                           credential: "cred-a", now: now)
        func spec(_ name: String, _ tags: [String]) -> TaskSpec {
            TaskSpec(name: name, command: ["true"], requirements: TaskRequirements(resources: ResourceVector(cpus: 1), tags: tags))
        }
        let job = try await store.submit(JobSubmission(name: "j", maxAttempts: 1, tasks: [
            spec("any", ["any:os.family:linux:macos"]), spec("mac", ["os.family:macos"]), spec("both", ["os.family:linux", "cpu.arch:x86_64"]),
        ]), owner: "o", now: now)
        var order = ClaimOrder(agent: agent, slots: 4, leaseUntil: later, now: now)
        order.startAtOnce = true
        let leases = try await store.exchange(agent: agent, ExchangeRequest(), claim: order, leaseUntil: later, now: now).response.leases
        let names = try await store.tasks(TaskFilter(job: job.id), page: PageRequest()).items
            .filter { task in leases.contains { $0.task == task.id } }.map(\.name)
        #expect(names.sorted() == ["any", "both"])
        let lease = try #require(leases.first)
        for status in ["Loading", "Loading", "Processing"] {
            let outcome = try await store.exchange(agent: agent, ExchangeRequest(progress: [
                ExchangeProgress(task: lease.task, epoch: lease.epoch, progress: 0.25, status: status)]),
                claim: nil, leaseUntil: later, now: now)
            #expect(outcome.response.refused.isEmpty)
        }
        let task = try await store.task(lease.task, history: true)
        #expect(task.status == "Processing" && task.progress == 0.25)
        #expect(task.history?.map(\.transition) == [.assign, .start])
        let listed = try await store.tasks(TaskFilter(job: job.id), page: PageRequest()).items
        #expect(listed.first { $0.id == lease.task }?.status == "Processing")
        #expect(listed.filter { $0.id != lease.task }.allSatisfy { $0.status == nil })
    }
}
