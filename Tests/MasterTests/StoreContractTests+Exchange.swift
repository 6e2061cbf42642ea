import Foundation
@testable import PaddockMaster
import PaddockProtocol
import Testing

/// What one exchange's reports set off together, on SQLite and PostgreSQL: the dependents of the runs
/// it finishes are looked up once for all of them, and a run started and finished in it is read once.
extension StoreContractTests {
    func succeeded(_ lease: TaskLease) -> ExchangeFinish {
        ExchangeFinish(task: lease.task, report: FinishReport(epoch: lease.epoch, outcome: .succeeded, exitCode: 0))
    }

    @Test(arguments: Backend.allCases)
    func anExchangesFinishesUnblockTheirDependentsAndItsClaimTakesThem(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let a = try await agent(store, "a")
        let first = try await store.submit(JobSubmission(name: "first", tasks: [
            TaskSpec(name: "top1", command: ["true"]),
            TaskSpec(name: "top2", command: ["true"]),
            TaskSpec(name: "both", command: ["true"], dependsOn: ["top1", "top2"]),
            TaskSpec(name: "one", command: ["true"], dependsOn: ["top1"]),
        ]), owner: "a", now: now)
        var afterFirst = JobSubmission(name: "after-first", tasks: [TaskSpec(name: "x", command: ["true"])])
        afterFirst.after = [first.id]
        let second = try await store.submit(afterFirst, owner: "a", now: now)
        let ids = try #require(first.taskIDs)

        // Both tops prefetched (assigned, not started), then started and finished in one exchange whose
        // claim takes what their successes unblocked.
        let prefetched = try await store.claim(heldOrder(a, slots: 0, prefetch: 2)).leases
        #expect(prefetched.map(\.task).sorted() == [ids[0], ids[1]] && prefetched.allSatisfy(\.prefetched))
        let outcome = try await store.exchange(agent: a, ExchangeRequest(
            started: prefetched.map { HeldLease(task: $0.task, epoch: $0.epoch) },
            finished: prefetched.map(succeeded)), claim: heldOrder(a, slots: 4), leaseUntil: later, now: now)
        #expect(outcome.response.refused.isEmpty)
        #expect(outcome.response.leases.map(\.task).sorted() == [ids[2], ids[3]])
        #expect(outcome.response.leases.allSatisfy { !$0.prefetched })
        for id in ids[0...1] {
            let view = try await store.task(id, history: true)
            #expect(view.state == .succeeded && view.attempt == 1)
            #expect(view.history?.map(\.transition) == [.assign, .start, .succeed])
        }
        for id in ids[2...3] {
            let view = try await store.task(id, history: true)
            #expect(view.state == .running)
            #expect(view.history?.map(\.transition) == [.unblock, .assign, .start])
        }
        #expect(try await store.task(try #require(second.taskIDs?.first), history: false).state == .blocked)

        // The last two finish together: the first job is done, the one after it is unblocked and claimed.
        let last = try await store.exchange(agent: a, ExchangeRequest(finished: outcome.response.leases.map(succeeded)),
                                            claim: heldOrder(a, slots: 4), leaseUntil: later, now: now)
        #expect(last.response.refused.isEmpty)
        #expect(last.response.leases.map(\.task) == second.taskIDs)
        #expect(try await store.job(first.id).counts[.succeeded] == 4)
    }

    @Test(arguments: Backend.allCases)
    func aRefusedFinishUnblocksNothingAndTheOthersStand(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let a = try await agent(store, "a")
        let first = try await store.submit(JobSubmission(name: "pair", tasks: [
            TaskSpec(name: "ok", command: ["true"]),
            TaskSpec(name: "stale", command: ["true"]),
            TaskSpec(name: "afterOK", command: ["true"], dependsOn: ["ok"]),
            TaskSpec(name: "afterStale", command: ["true"], dependsOn: ["stale"]),
        ]), owner: "a", now: now)
        let ids = try #require(first.taskIDs)
        let leases = try await store.claim(heldOrder(a, slots: 2)).leases
        #expect(leases.map(\.task).sorted() == [ids[0], ids[1]])
        // The second finish names an epoch the task never had: refused alone, it unblocks nothing.
        let stale = try #require(leases.first { $0.task == ids[1] })
        let outcome = try await store.exchange(agent: a, ExchangeRequest(finished: [
            succeeded(try #require(leases.first { $0.task == ids[0] })),
            ExchangeFinish(task: stale.task, report: FinishReport(epoch: LeaseEpoch(stale.epoch.rawValue + 7),
                                                                  outcome: .succeeded, exitCode: 0)),
        ]), claim: heldOrder(a, slots: 4), leaseUntil: later, now: now)
        #expect(outcome.response.refused.map(\.task) == [ids[1]])
        #expect(outcome.response.leases.map(\.task) == [ids[2]])
        #expect(try await store.task(ids[1], history: false).state == .running)
        #expect(try await store.task(ids[3], history: false).state == .blocked)
    }

    /// Starts, progress and finishes are checked before they write and take no savepoint: a refused
    /// one leaves nothing behind (rows, events, counts) and the transaction goes on; a resent start or
    /// finish changes nothing.
    @Test(arguments: Backend.allCases)
    func refusedStartsProgressAndFinishesLeaveNothingBehindAndTheRestStands(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let a = try await agent(store, "a")
        let job = try await store.submit(JobSubmission(name: "four", tasks: (1...4).map {
            TaskSpec(name: "t\($0)", command: ["true"])
        }), owner: "a", now: now)
        let leases = try await store.claim(heldOrder(a, slots: 2, prefetch: 2)).leases
        let running = leases.filter { !$0.prefetched }, held = leases.filter(\.prefetched)
        try #require(running.count == 2 && held.count == 2)
        let (r1, r2, p1, p2) = (running[0], running[1], held[0], held[1])
        func off(_ epoch: LeaseEpoch) -> LeaseEpoch { LeaseEpoch(epoch.rawValue + 7) }

        let outcome = try await store.exchange(agent: a, ExchangeRequest(
            started: [HeldLease(task: p1.task, epoch: p1.epoch), HeldLease(task: p2.task, epoch: off(p2.epoch))],
            progress: [ExchangeProgress(task: r1.task, epoch: r1.epoch, progress: 0.5),
                       ExchangeProgress(task: p1.task, epoch: off(p1.epoch), progress: 0.9)],
            finished: [ExchangeFinish(task: r2.task, report: FinishReport(epoch: r2.epoch, outcome: .succeeded, exitCode: 0,
                                                                          usage: TaskUsage(cpuSeconds: 1.5, rss: 100, peakRSS: 300, processes: 1))),
                       ExchangeFinish(task: p2.task, report: FinishReport(epoch: p2.epoch, outcome: .succeeded, exitCode: 0))]),
            claim: nil, leaseUntil: later, now: now)
        // p2's start is refused, which fences its finish too; p1's progress is refused, its start stands.
        #expect(Set(outcome.response.refused.map { "\($0.task):\($0.kind)" })
                == ["\(p2.task):\(ExchangeRefusal.Kind.start)", "\(p1.task):\(ExchangeRefusal.Kind.progress)"])
        let p1View = try await store.task(p1.task, history: true)
        #expect(p1View.history?.map(\.transition) == [.assign, .start] && p1View.state == .running && p1View.progress == 0)
        #expect(try await store.task(p2.task, history: true).history?.map(\.transition) == [.assign])
        #expect(try await store.task(p2.task, history: false).state == .assigned)
        let r1View = try await store.task(r1.task, history: false)
        #expect(r1View.state == .running && r1View.progress == 0.5)
        let r2View = try await store.task(r2.task, history: true)
        #expect(r2View.history?.map(\.transition) == [.assign, .start, .succeed])
        #expect(r2View.exitCode == 0 && r2View.progress == 1 && r2View.attempt == 1)
        #expect(r2View.usage?.cpuSeconds == 1.5 && r2View.usage?.peakRSS == 300)

        // Sent again (an answer lost) with p1's failure: nothing refused, nothing recorded twice.
        let again = try await store.exchange(agent: a, ExchangeRequest(
            started: [HeldLease(task: p1.task, epoch: p1.epoch)],
            finished: [succeeded(r2), ExchangeFinish(task: p1.task, report: FinishReport(epoch: p1.epoch, outcome: .failed,
                                                                                          exitCode: 3, reason: "exit 3"))]),
            claim: nil, leaseUntil: later, now: now)
        #expect(again.response.refused.isEmpty)
        let failed = try await store.task(p1.task, history: true)
        #expect(failed.history?.map(\.transition).prefix(2) == [.assign, .start] && failed.history?.count == 3)
        #expect([.retryAfterFailure, .fail].contains(failed.history?.last?.transition) && failed.exitCode == 3)
        #expect(try await store.task(r2.task, history: true).history?.map(\.transition) == [.assign, .start, .succeed])
        let counts = try await store.job(job.id).counts
        #expect(counts[.running] == 1 && counts[.assigned] == 1 && counts[.succeeded] == 1)
    }
}
