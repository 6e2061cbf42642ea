import Foundation
import PaddockProtocol

/// Logs live in the database, keyed by task and run (never by a path a client
/// sent), in the chunks the agent uploaded. The key's column is named `attempt`
/// but holds the task's `runs` at the run's start: the Nth start of the task,
/// counting retried and released runs, so no two runs ever share a log. `received` is how far the
/// agent's stream has been acknowledged; `stored` how much is kept (the cap).
extension SQLStore {
    public func appendLog(task: TaskID, agent: AgentID, epoch: LeaseEpoch, offset: Int64, data: Data) async throws -> Int64 {
        try await engine.write { db in try Self.appendLog(db, task: task, agent: agent, epoch: epoch, offset: offset, data: data) }
    }

    static func appendLog(_ db: any SQLDatabase, task: TaskID, agent: AgentID, epoch: LeaseEpoch, offset: Int64,
                          data: Data) throws -> Int64 {
        try appendLogTellingCap(db, task: task, agent: agent, epoch: epoch, offset: offset, data: data).received
    }

    /// As `appendLog`, and whether the run's log has reached its cap (what follows is dropped).
    static func appendLogTellingCap(_ db: any SQLDatabase, task: TaskID, agent: AgentID, epoch: LeaseEpoch, offset: Int64,
                                    data: Data) throws -> (received: Int64, capped: Bool) {
        let view = try Self.taskView(db, task)
        guard view.agent == agent, view.epoch == epoch, view.state != .assigned, view.runs > 0 else {
            if view.agent == agent, view.epoch == epoch {
                throw PaddockError(status: 409, code: "stale_epoch",
                                   message: "task \(task) has not started under epoch \(epoch): its log follows its start")
            }
            throw PaddockError.staleLease(task: task, sent: epoch, current: view.epoch, state: view.state,
                                          heldByCaller: view.agent == agent)
        }
        let row = try SQLRow.fetchOne(db, sql: "SELECT received, stored FROM task_logs WHERE task_id = ? AND attempt = ?",
                                   arguments: [task.rawValue, view.runs])
        let received: Int64 = row?["received"] ?? 0
        var stored: Int64 = row?["stored"] ?? 0
        guard offset <= received else {
            throw PaddockError.conflict("log gap: the master holds \(received) bytes of this run, not \(offset)")
        }
        let skip = Int(received - offset)
        guard skip < data.count else { return (received, stored >= Limits.logBytesPerTask) }  // all of it was already here (a resend)
        var fresh = data.dropFirst(skip)
        let newReceived = received + Int64(fresh.count)
        let room = Limits.logBytesPerTask - stored
        let marker = Data("\n[paddock: log reached its \(ByteSize.format(Limits.logBytesPerTask)) cap; the rest is dropped]\n".utf8)
        if room <= 0 {
            // Full: the line saying so goes in once (after the cap, stored is past it), the rest nowhere.
            fresh = room == 0 ? marker : Data()
        } else if Int64(fresh.count) > room {
            fresh = fresh.prefix(Int(room)) + marker
        }
        if !fresh.isEmpty {
            try db.execute(sql: "INSERT INTO log_chunks (task_id, attempt, \"offset\", data) VALUES (?, ?, ?, ?)",
                           arguments: [task.rawValue, view.runs, stored, Data(fresh)])
            stored += Int64(fresh.count)
        }
        try db.execute(sql: """
            INSERT INTO task_logs (task_id, attempt, received, stored) VALUES (?, ?, ?, ?)
            ON CONFLICT (task_id, attempt) DO UPDATE SET received = excluded.received, stored = excluded.stored
            """, arguments: [task.rawValue, view.runs, newReceived, stored])
        return (newReceived, stored >= Limits.logBytesPerTask)
    }

    public func readLog(task: TaskID, attempt: Int?, after: Int64, limit: Int) async throws -> LogPage {
        try await engine.read { db in
            let view = try Self.taskView(db, task)
            // Before its first start a task has no run yet: follow the one about to begin.
            let run = attempt ?? max(view.runs, view.state == .assigned || view.state == .queued ? view.runs + 1 : 1)
            // From the chunk that holds byte `after` on, that chunk trimmed to start there.
            let rows = try SQLRow.fetchAll(db, sql: """
                SELECT "offset" AS start, data FROM log_chunks
                WHERE task_id = ? AND attempt = ? AND "offset" + length(data) > ? ORDER BY "offset" LIMIT ?
                """, arguments: [task.rawValue, run, after, limit])
            let live = view.state == .running && view.runs == run
                || (view.state == .assigned || view.state == .queued || view.state == .blocked) && view.runs + 1 == run
            let chunks = rows.map { row -> Data in
                let data: Data = row["data"]
                let start: Int64 = row["start"]
                return start < after ? data.dropFirst(Int(after - start)) : data
            }
            return LogPage(chunks: chunks.map { Data($0) }, attempt: run, live: live)
        }
    }
}
