import Foundation
import PaddockProtocol

/// Log retention (issue 16): the logs of tasks that finished long enough ago are deleted, and a
/// job's logs are kept within a size.
extension SQLStore {
    /// Deletes the logs (every run's) of up to `limit` tasks that ended (succeeded, failed or were
    /// cancelled) before `finishedBefore`; returns how many tasks lost their logs. A task retried
    /// since has no end time and keeps its logs.
    public func pruneLogs(finishedBefore: Date, limit: Int = 500) async throws -> Int {
        try await engine.write { db in
            let ids = try Int64.fetchAll(db, sql: """
                SELECT DISTINCT l.task_id FROM task_logs l JOIN tasks t ON t.id = l.task_id
                WHERE t.finished_at IS NOT NULL AND t.finished_at < ? AND t.state IN ('succeeded', 'failed', 'cancelled')
                LIMIT ?
                """, arguments: [finishedBefore.timeIntervalSince1970, limit])
            try Self.deleteLogs(db, tasks: ids)
            return ids.count
        }
    }

    /// Keeps each job's stored logs within `bytesPerJob` (`--log-retention-bytes`): for up to `limit`
    /// jobs over it, the logs of their tasks that ended go, oldest end first, until the job is within
    /// it again. Logs of tasks still queued or running are never deleted, so a job whose live runs
    /// hold more stays over. Returns how many tasks lost their logs.
    public func pruneLogs(overBytesPerJob bytesPerJob: Int64, limit: Int = 50) async throws -> Int {
        try await engine.write { db in
            let jobs = try SQLRow.fetchAll(db, sql: """
                SELECT t.job_id, SUM(l.stored) AS bytes FROM task_logs l JOIN tasks t ON t.id = l.task_id
                GROUP BY t.job_id HAVING SUM(l.stored) > ? LIMIT ?
                """, arguments: [bytesPerJob, limit])
            var pruned: [Int64] = []
            for job in jobs {
                var over = (job["bytes"] as Int64) - bytesPerJob
                let ended = try SQLRow.fetchAll(db, sql: """
                    SELECT t.id, SUM(l.stored) AS bytes FROM task_logs l JOIN tasks t ON t.id = l.task_id
                    WHERE t.job_id = ? AND t.finished_at IS NOT NULL AND t.state IN ('succeeded', 'failed', 'cancelled')
                    GROUP BY t.id, t.finished_at ORDER BY t.finished_at, t.id
                    """, arguments: [job["job_id"] as Int64])
                for task in ended where over > 0 {
                    pruned.append(task["id"])
                    over -= task["bytes"] as Int64
                }
            }
            for start in stride(from: 0, to: pruned.count, by: 500) {
                try Self.deleteLogs(db, tasks: Array(pruned[start..<min(start + 500, pruned.count)]))
            }
            return pruned.count
        }
    }

    /// Every run's log of these tasks (at most a few hundred: one statement each).
    static func deleteLogs(_ db: any SQLDatabase, tasks ids: [Int64]) throws {
        guard !ids.isEmpty else { return }
        let placeholders = Array(repeating: "?", count: ids.count).joined(separator: ", ")
        try db.execute(sql: "DELETE FROM log_chunks WHERE task_id IN (\(placeholders))", arguments: ids)
        try db.execute(sql: "DELETE FROM task_logs WHERE task_id IN (\(placeholders))", arguments: ids)
    }
}
