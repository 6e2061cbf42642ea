import Foundation
@testable import PaddockMaster
import PaddockProtocol
import Testing

/// Task events are written together at the end of a PostgreSQL transaction (SQLite writes each at
/// once): either way a transaction reads the events it recorded, a savepoint rolled back drops its
/// own, and the rest are written in the order they happened.
@Suite struct TaskEventBufferTests {
    struct Refused: Error {}

    @Test(arguments: Backend.allCases)
    func eventsKeepTheirOrderAndASavepointRolledBackDropsItsOwn(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let now = Date()
        let job = try await store.submit(JobSubmission(name: "events", tasks: [TaskSpec(name: "a", command: ["true"])]),
                                         owner: "alice", now: now)
        let task = try #require(job.taskIDs?.first)
        func reasons() async throws -> [String] {
            try await store.engine.read { db in
                try String.fetchAll(db, sql: "SELECT reason FROM task_events WHERE task_id = ? AND reason IS NOT NULL ORDER BY id",
                                    arguments: [task.rawValue])
            }
        }
        let before = try await reasons()
        let seen = try await store.engine.write { db -> [String] in
            func event(_ reason: String) throws {
                try SQLStore.insertEvent(db, task: task, .start, from: .assigned, to: .running, agent: nil,
                                         epoch: LeaseEpoch(1), reason: reason, now: now)
            }
            try event("first")
            do {
                try db.savepoint {
                    try event("rolled back")
                    throw Refused()
                }
            } catch is Refused {}
            try event("second")
            // A read of the events within the transaction sees those recorded so far.
            let seen = try String.fetchAll(db, sql: "SELECT reason FROM task_events WHERE task_id = ? AND reason IS NOT NULL ORDER BY id",
                                           arguments: [task.rawValue])
            try db.savepoint {
                try event("third")
                // Written inside this savepoint (the read below), then rolled back with it.
                _ = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM task_events WHERE task_id = ?", arguments: [task.rawValue])
                try event("fourth")
            }
            do {
                try db.savepoint {
                    try event("dropped after a read")
                    _ = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM task_events WHERE task_id = ?", arguments: [task.rawValue])
                    throw Refused()
                }
            } catch is Refused {}
            try event("last")
            return seen
        }
        #expect(seen == before + ["first", "second"])
        #expect(try await reasons() == before + ["first", "second", "third", "fourth", "last"])
    }
}
