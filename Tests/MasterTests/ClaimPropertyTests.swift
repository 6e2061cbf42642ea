import Foundation
import PaddockMaster
import PaddockProtocol
import PaddockTestSupport
import Testing

/// A property test of the store's claims: random agents, random requirements, claims racing in
/// random order. What runs on an agent never exceeds its totals, and every task that fits some
/// agent is eventually placed and finished exactly once.
@Suite struct ClaimPropertyTests {
    typealias Generator = SplitMix64

    /// Part of the store contract: on both engines, with the claims racing through two stores
    /// on one database (two masters).
    @Test(arguments: Backend.allCases, [1, 2, 3] as [UInt64])
    func noAgentIsOverCommittedAndEveryFittingTaskIsPlaced(backend: Backend, seed: UInt64) async throws {
        var random = Generator(seed: seed)
        let fixture = try await StoreFixture.make(backend)
        let store = fixture.store
        let masters = [store, try await fixture.second()]
        let now = Date()

        var totals: [AgentID: ResourceVector] = [:]
        for index in 0..<5 {
            let total = ResourceVector(cpus: Double(Int.random(in: 1...8, using: &random)),
                                       ram: Int64.random(in: 1...16, using: &random) << 30, gpus: Int64.random(in: 0...2, using: &random))
            let id = try await store.enroll(EnrollRequest(name: "agent\(index)", resources: total, tags: index % 2 == 0 ? ["gpu"] : [],
                                                          version: "t"), credential: "c\(index)", now: now)
            totals[id] = total
        }
        let specs = (0..<120).map { index in
            TaskSpec(name: "t\(index)", command: ["true"], requirements: TaskRequirements(
                resources: ResourceVector(cpus: Double(Int.random(in: 1...10, using: &random)) / 2,
                                          ram: Int64.random(in: 0...8, using: &random) << 30,
                                          gpus: Int64.random(in: 0...2, using: &random) == 2 ? 1 : 0),
                tags: Int.random(in: 0...5, using: &random) == 0 ? ["gpu"] : []))
        }
        let job = try await store.submit(JobSubmission(name: "random", maxAttempts: 1, tasks: specs), owner: "p", now: now)
        let fitting = Set(try await store.tasks(TaskFilter(job: job.id), page: PageRequest(limit: 1000)).items.filter { task in
            totals.contains { id, total in
                ClaimPolicy.canEverRun(task.requirements, capacity: total, tags: id.rawValue % 2 == 1 ? ["gpu"] : [])
            }
        }.map(\.id))

        var finished: Set<TaskID> = []
        for _ in 0..<400 {
            // Several claims race; then some running tasks finish.
            let order = totals.keys.shuffled(using: &random)
            let slots = order.map { _ in Int.random(in: 1...4, using: &random) }
            let outcomes = try await withThrowingTaskGroup(of: [TaskLease].self) { group in
                for (index, (agent, slots)) in zip(order, slots).enumerated() {
                    let store = masters[index % masters.count]
                    group.addTask {
                        try await store.claim(ClaimOrder(agent: agent, slots: slots, leaseUntil: now.addingTimeInterval(600),
                                                         now: now)).leases
                    }
                }
                return try await group.reduce(into: [TaskLease]()) { $0 += $1 }
            }
            for lease in outcomes {
                let agent = try #require(try await store.task(lease.task, history: false).agent)
                _ = try await store.start(task: lease.task, agent: agent, epoch: lease.epoch,
                                          leaseUntil: now.addingTimeInterval(600), now: now)
            }
            // The invariant, checked from the store's own view after every round.
            for (id, total) in totals {
                let agent = try await store.agent(id)
                let used = total - agent.resources.free
                #expect(used.fits(in: total), "agent \(id) over-committed: \(used.summary) of \(total.summary)")
            }
            let running = try await store.tasks(TaskFilter(job: job.id, state: .running), page: PageRequest(limit: 1000)).items
            for task in running where Bool.random(using: &random) {
                let view = try await store.finish(task: task.id, agent: try #require(task.agent),
                                                  report: FinishReport(epoch: task.epoch, outcome: .succeeded, exitCode: 0), now: now)
                #expect(view.state == .succeeded)
                #expect(finished.insert(task.id).inserted, "finished twice: \(task.id)")
            }
            if finished == fitting { break }
        }
        #expect(finished == fitting, "every task that fits some agent was placed and finished")
        let left = try await store.tasks(TaskFilter(job: job.id, state: .queued), page: PageRequest(limit: 1000)).items
        #expect(Set(left.map(\.id)).isDisjoint(with: fitting))
    }
}
