import Foundation
import GRDB
@testable import PaddockMaster
import PaddockProtocol
import PaddockTestSupport
import Testing

/// A SQLite file an earlier master wrote opens under this one: the migrations after its schema run
/// on its rows, and its queue is served.
@Suite struct SQLiteUpgradeTests {
    /// v14 replaced the queue's and the agents' indexes on tasks with partial ones. A queue written
    /// under v13 (three tasks of one job) is claimed, run and finished after the upgrade, through
    /// the new indexes.
    @Test func aQueueWrittenBeforeThePartialIndexesIsServedAfterThem() async throws {
        let path = try TestDirectory.makeUntilExit("paddock-upgrade") + "/paddock.sqlite"
        let old = try DatabaseQueue(path: path)
        try SQLiteSchema.migrator().migrate(old, upTo: "v13-lease-grants")
        try await old.write { db in
            try db.execute(sql: """
                INSERT INTO jobs (id, name, owner, priority, labels, created_at, queued) VALUES (1, 'before', 'admin', 50, '{}', 0, 3)
                """)
            for id in 1...3 {
                try db.execute(sql: """
                    INSERT INTO tasks (id, job_id, name, command, env, cpu_millis, ram, disk, gpus, tags, priority,
                                       max_attempts, state, created_at)
                    VALUES (?, 1, ?, '["true"]', '{}', 1000, 0, 0, 0, '[]', 50, 3, 'queued', 0)
                    """, arguments: [id, "t\(id)"])
            }
        }
        try old.close()

        let master = try TestMaster(database: path)
        let indexes = try await (master.master.store as? SQLStore)?.engine.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tasks' AND sql IS NOT NULL")
        }
        #expect(Set(indexes ?? []) == ["tasks_ready", "tasks_held", "tasks_agent", "tasks_lease", "tasks_job_queue"])
        try await master.test { client in
            let (agent, credential) = try await client.enroll("a", cpus: 2)
            let claim = ClaimRequest(slots: 2, wait: 0)
            let first = try await client.exchange(agent, credential, ExchangeRequest(claim: claim))
            #expect(first.leases.map(\.task.rawValue).sorted() == [1, 2])
            func done(_ lease: TaskLease) -> ExchangeFinish {
                ExchangeFinish(task: lease.task, report: FinishReport(epoch: lease.epoch, outcome: .succeeded, exitCode: 0))
            }
            let second = try await client.exchange(agent, credential, ExchangeRequest(finished: first.leases.map(done), claim: claim))
            #expect(second.refused.isEmpty)
            #expect(second.leases.map(\.task.rawValue) == [3])
            let third = try await client.exchange(agent, credential, ExchangeRequest(finished: second.leases.map(done)))
            #expect(third.refused.isEmpty && third.leases.isEmpty)
            let job = try await client.job(JobID(rawValue: 1))
            #expect(job.state == .succeeded && job.counts[.succeeded] == 3)
        }
    }
}
