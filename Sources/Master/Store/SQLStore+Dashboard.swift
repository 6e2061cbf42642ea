import Foundation
import PaddockProtocol

/// What the web dashboard reads beyond the rest of the API (issue 17). A protocol of its own, so
/// that `Store` (and every wrapper of it) is unchanged: a store without it answers 404 on these routes.
public protocol DashboardStore: Sendable {
    func jobGraph(_ job: JobID) async throws -> JobGraph
    func throughput(since: Date, bucketSeconds: Int, buckets: Int) async throws -> Throughput
}

extension SQLStore: DashboardStore {
    public func jobGraph(_ job: JobID) async throws -> JobGraph {
        try await engine.read { db in
            guard try SQLRow.fetchOne(db, sql: "SELECT id FROM jobs WHERE id = ?", arguments: [job.rawValue]) != nil else {
                throw PaddockError.notFound("job \(job)")
            }
            // Through tasks(job_id, ...) and task_deps' primary key: the job's own rows only.
            let rows = try SQLRow.fetchAll(db, sql: """
                SELECT d.depends_on, d.task_id FROM tasks t JOIN task_deps d ON d.task_id = t.id
                WHERE t.job_id = ? ORDER BY d.task_id, d.depends_on LIMIT ?
                """, arguments: [job.rawValue, Int64(JobGraph.maxEdges + 1)])
            let edges = rows.prefix(JobGraph.maxEdges).map { row -> [TaskID] in
                [TaskID(rawValue: row[0]), TaskID(rawValue: row[1])]
            }
            let after = try Int64.fetchAll(db, sql: "SELECT after_job FROM job_deps WHERE job_id = ? ORDER BY after_job",
                                           arguments: [job.rawValue]).map(JobID.init(rawValue:))
            return JobGraph(edges: Array(edges), after: after, truncated: rows.count > JobGraph.maxEdges)
        }
    }

    /// Counted from the task history, among its latest `throughputScan` moves at most (through the
    /// primary key: a bounded read however long the history is, and no index on `at` needed).
    public func throughput(since: Date, bucketSeconds: Int, buckets: Int) async throws -> Throughput {
        let start = Int64(since.timeIntervalSince1970.rounded(.down))
        let step = Int64(max(1, bucketSeconds))
        let rows = try await engine.read { db in
            try SQLRow.fetchAll(db, sql: """
                SELECT (\(db.dialect.wholeSeconds("at")) - ?) / ? AS bucket, transition, COUNT(*) AS n FROM task_events
                WHERE id > COALESCE((SELECT MAX(id) FROM task_events), 0) - ? AND at >= ?
                  AND transition IN ('succeed', 'fail', 'retry_after_failure')
                GROUP BY bucket, transition
                """, arguments: [start, step, Self.throughputScan, Double(start)])
        }
        var succeeded = Array(repeating: 0, count: buckets)
        var failed = Array(repeating: 0, count: buckets)
        for row in rows {
            let bucket: Int64 = row["bucket"]
            let count: Int64 = row["n"]
            let transition: String = row["transition"]
            guard bucket >= 0, bucket < Int64(buckets) else { continue }
            if transition == TaskTransition.succeed.rawValue {
                succeeded[Int(bucket)] += Int(count)
            } else {
                failed[Int(bucket)] += Int(count)
            }
        }
        return Throughput(since: Date(timeIntervalSince1970: Double(start)), bucketSeconds: Int(step),
                          succeeded: succeeded, failed: failed)
    }

    static let throughputScan: Int64 = 500_000
}
