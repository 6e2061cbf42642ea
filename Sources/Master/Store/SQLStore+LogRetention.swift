import Foundation
import PaddockProtocol

/// Log retention (issue 16): the logs of tasks that finished long enough ago are deleted.
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
            guard !ids.isEmpty else { return 0 }
            let placeholders = Array(repeating: "?", count: ids.count).joined(separator: ", ")
            try db.execute(sql: "DELETE FROM log_chunks WHERE task_id IN (\(placeholders))", arguments: ids)
            try db.execute(sql: "DELETE FROM task_logs WHERE task_id IN (\(placeholders))", arguments: ids)
            return ids.count
        }
    }
}
