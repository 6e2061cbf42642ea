import Foundation
import PaddockProtocol

/// A running task's status (its latest `openjd_status: TEXT` line) lives in its history, as a
/// `status` row of the run's epoch (from and to `running`, TEXT as the reason), not in a column of
/// its own: the task view shows the latest such row of the task's current epoch. These rows are not
/// transitions, so the history (`TaskEventView`) leaves them out.
extension SQLStore {
    static let statusMove = "status"

    /// The subquery that reads a task's status, as the column `status` of a `SELECT ... FROM tasks`:
    /// none while it waits in the queue (a retried or released task's next run starts without one).
    static let statusColumn = """
        CASE WHEN tasks.state IN ('queued', 'blocked') THEN NULL ELSE
        (SELECT e.reason FROM task_events e WHERE e.task_id = tasks.id AND e.epoch = tasks.epoch
         AND e.transition = '\(statusMove)' ORDER BY e.id DESC LIMIT 1) END AS status
        """

    static func recordStatus(_ db: any SQLDatabase, task: TaskID, agent: AgentID, epoch: LeaseEpoch, status: String,
                             now: Date) throws {
        let current = try Self.fenced(try Self.leaseState(db, task), agent: agent, epoch: epoch)
        guard current.state == .running else {
            throw PaddockError.conflict("task \(task) is \(current.state.rawValue), not running")
        }
        let last = try String.fetchOne(db, sql: """
            SELECT reason FROM task_events WHERE task_id = ? AND epoch = ? AND transition = '\(statusMove)'
            ORDER BY id DESC LIMIT 1
            """, arguments: [task.rawValue, epoch.rawValue])
        guard last != status else { return }
        try db.execute(sql: """
            INSERT INTO task_events (task_id, at, transition, from_state, to_state, agent_id, epoch, reason)
            VALUES (?, ?, '\(statusMove)', ?, ?, ?, ?, ?)
            """, arguments: [task.rawValue, now.timeIntervalSince1970, TaskState.running.rawValue,
                             TaskState.running.rawValue, agent.rawValue, epoch.rawValue, status])
    }

    /// The status column of a row read with `statusColumn`, if it has one.
    static func status(_ row: SQLRow) -> String? {
        if case .text(let text) = row.value("status") { return text }
        return nil
    }
}
