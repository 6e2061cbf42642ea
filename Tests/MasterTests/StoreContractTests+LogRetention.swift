import Foundation
import PaddockMaster
import PaddockProtocol
import Testing

extension StoreContractTests {
    /// `--log-retention-bytes`: a job past the bound loses the logs of its tasks that ended first,
    /// until it is within it; a running task's log stays, and a job within the bound is not touched.
    @Test(arguments: Backend.allCases)
    func aJobsLogsAreKeptWithinTheirBoundOldestEndedFirst(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let a = try await agent(store, "a")
        let big = try await job(store, 4, name: "big")
        let hundred = Data(repeating: UInt8(ascii: "x"), count: 100)
        func start() async throws -> TaskLease {
            var order = ClaimOrder(agent: a, slots: 1, leaseUntil: later, now: now)
            order.startAtOnce = true
            let lease = try #require(try await store.claim(order).leases.first)
            _ = try await store.appendLog(task: lease.task, agent: a, epoch: lease.epoch, offset: 0, data: hundred)
            return lease
        }
        var ended: [TaskID] = []
        for second in 1...3 {
            let lease = try await start()
            _ = try await store.finish(task: lease.task, agent: a, report: FinishReport(epoch: lease.epoch, outcome: .succeeded,
                                                                                         exitCode: 0),
                                       now: now.addingTimeInterval(Double(second)))
            ended.append(lease.task)
        }
        let running = try await start()
        // Another job, within the bound, on the same farm.
        let small = try await job(store, 1, name: "small")
        let smallLease = try await start()
        _ = try await store.finish(task: smallLease.task, agent: a, report: FinishReport(epoch: smallLease.epoch, outcome: .succeeded,
                                                                                          exitCode: 0), now: now)
        #expect(try await store.task(smallLease.task, history: false).jobID == small.id)

        func logged(_ task: TaskID) async throws -> Int {
            try await store.readLog(task: task, attempt: nil, after: 0, limit: 100).chunks.reduce(0) { $0 + $1.count }
        }
        // 400 bytes in `big` against 250: the two tasks that ended first go (300, then 200 left).
        #expect(try await store.pruneLogs(overBytesPerJob: 250) == 2)
        let first = try await logged(ended[0]), second = try await logged(ended[1])
        #expect(first == 0 && second == 0)
        #expect(try await logged(ended[2]) == 100)
        #expect(try await logged(running.task) == 100)
        #expect(try await logged(smallLease.task) == 100)
        #expect(try await store.pruneLogs(overBytesPerJob: 250) == 0)
        // Past the bound with nothing ended left but the one: it goes; the running log never does.
        #expect(try await store.pruneLogs(overBytesPerJob: 50) == 2)  // `big`'s last ended task, and `small`'s
        #expect(try await logged(running.task) == 100)
        #expect(try await store.pruneLogs(overBytesPerJob: 50) == 0)
        #expect(try await store.task(running.task, history: false).jobID == big.id)
    }
}
