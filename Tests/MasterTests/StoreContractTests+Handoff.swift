import Foundation
@testable import PaddockMaster
import PaddockProtocol
import Testing

/// A submission leases its new tasks to the held exchanges they fit, in its own transaction
/// (`HeldClaims`), on SQLite and PostgreSQL.
extension StoreContractTests {
    func heldOrder(_ agent: AgentID, slots: Int, prefetch: Int = 0) -> ClaimOrder {
        var order = ClaimOrder(agent: agent, slots: slots, prefetch: prefetch, leaseUntil: later, now: now)
        order.capacity = slots
        order.startAtOnce = true
        return order
    }

    @Test(arguments: Backend.allCases)
    func aSubmissionLeasesToTheHeldClaimsItFitsInItsOwnTransaction(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let small = try await agent(store, "small", cpus: 4)
        let tagged = try await agent(store, "tagged", cpus: 4, tags: ["blender"])
        let held = HeldClaims()
        let room = ClaimRoom(fits: ResourceVector(cpus: 4, ram: 8 << 30))
        let first = held.hold(heldOrder(small, slots: 1), leaseTimeout: 30, room: room, credential: nil)
        // The tagged agent can run untagged tasks too.
        let taggedTicket = held.hold(heldOrder(tagged, slots: 2), leaseTimeout: 30,
                                     room: ClaimRoom(fits: ResourceVector(cpus: 4, ram: 8 << 30), tags: ["blender"]),
                                     credential: nil)
        let job = try JobSubmission(name: "three", tasks: (0..<3).map {
            TaskSpec(name: "t\($0)", command: ["true"], requirements: TaskRequirements(resources: ResourceVector(cpus: 1)))
        }).validated()
        let outcome = try await store.submit(job, owner: "alice", now: now, idempotency: nil, handoff: held)

        // Both held claims fit plain tasks (a tag an agent has is no requirement): each was taken,
        // and each leased what fits its free room, running from the submission's commit.
        #expect(!held.withdraw(first) && !held.withdraw(taggedTicket))
        let firstLeases = await first.leases
        let taggedLeases = await taggedTicket.leases
        #expect(firstLeases.count == 1 && taggedLeases.count == 2)
        for lease in firstLeases + taggedLeases {
            #expect(!lease.prefetched)
            let view = try await store.task(lease.task, history: true)
            #expect(view.state == .running)
            #expect(view.history?.map(\.transition) == [.assign, .start])
        }
        // What was leased wakes no one: nothing of the job is left queued.
        #expect(outcome.readied.isEmpty)
        #expect(try await store.job(outcome.job.id).counts[.running] == 3)
        #expect(held.count == 0)
    }

    @Test(arguments: Backend.allCases)
    func aHandoffTakesOneHeldClaimPerNewTaskAndLeavesTheRestWaiting(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let agents = [try await agent(store, "a"), try await agent(store, "b"), try await agent(store, "c")]
        let held = HeldClaims()
        let room = ClaimRoom(fits: ResourceVector(cpus: 4, ram: 8 << 30))
        let tickets = agents.map { held.hold(heldOrder($0, slots: 4), leaseTimeout: 30, room: room, credential: nil) }
        // Too big for any of them: nobody is taken.
        let huge = try JobSubmission(name: "huge", tasks: [TaskSpec(name: "h", command: ["true"],
            requirements: TaskRequirements(resources: ResourceVector(cpus: 16)))]).validated()
        let unfit = try await store.submit(huge, owner: "alice", now: now, idempotency: nil, handoff: held)
        #expect(held.count == 3 && unfit.readied.count == 1)
        // One task: the oldest held claim leases it; the others still wait.
        let one = try JobSubmission(name: "one", tasks: [TaskSpec(name: "t", command: ["true"])]).validated()
        let outcome = try await store.submit(one, owner: "alice", now: now, idempotency: nil, handoff: held)
        #expect(!held.withdraw(tickets[0]))
        #expect(await tickets[0].leases.map(\.task) == outcome.job.taskIDs)
        #expect(held.withdraw(tickets[1]) && held.withdraw(tickets[2]))
        #expect(outcome.readied.isEmpty)
    }

    @Test(arguments: Backend.allCases)
    func aFailedSubmissionHandsOverNothing(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let only = try await agent(store, "only")
        let held = HeldClaims()
        let ticket = held.hold(heldOrder(only, slots: 1), leaseTimeout: 30, room: ClaimRoom(fits: ResourceVector(cpus: 4, ram: 8 << 30)),
                               credential: nil)
        // After a job that does not exist: refused before anything is inserted or leased.
        var after = JobSubmission(name: "after", tasks: [TaskSpec(name: "x", command: ["true"])])
        after.after = [JobID(rawValue: 999)]
        #expect(await status { _ = try await store.submit(after.validated(), owner: "alice", now: now, idempotency: nil,
                                                          handoff: held) } == 400)
        #expect(held.withdraw(ticket), "still held: nothing took it")
        #expect(try await store.tasks(TaskFilter(), page: PageRequest()).items.isEmpty)
    }

    /// A held exchange let through on a cached credential is handed nothing once that credential no
    /// longer matches the agent's row (an admin reset it): its registration is taken and answered
    /// with no lease, and the task stays queued for the next claim.
    @Test(arguments: Backend.allCases)
    func aHandoffChecksTheHeldExchangesCredential(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let reset = try await agent(store, "reset")
        let held = HeldClaims()
        let room = ClaimRoom(fits: ResourceVector(cpus: 4, ram: 8 << 30))
        let stale = held.hold(heldOrder(reset, slots: 1), leaseTimeout: 30, room: room,
                              credential: SecretHash.hex("not-its-credential"))
        let one = try JobSubmission(name: "one", tasks: [TaskSpec(name: "t", command: ["true"])]).validated()
        let outcome = try await store.submit(one, owner: "alice", now: now, idempotency: nil, handoff: held)
        #expect(!held.withdraw(stale))
        #expect(await stale.leases.isEmpty)
        #expect(outcome.readied.count == 1, "nothing was leased: the held claims it fits are still woken")
        let task = try #require(outcome.job.taskIDs?.first)
        #expect(try await store.task(task, history: false).state == .queued)
        // With its right credential (the hash of the one it enrolled with), it is handed the task.
        let right = held.hold(heldOrder(reset, slots: 1), leaseTimeout: 30, room: room,
                              credential: SecretHash.hex("cred-reset"))
        let again = try await store.submit(one, owner: "alice", now: now, idempotency: nil, handoff: held)
        #expect(await right.leases.count == 1)
        #expect(again.readied.count == 1, "it took the older queued task: the new one still wakes a claim")
    }
}
