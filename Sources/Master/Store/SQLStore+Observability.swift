import Foundation
import PaddockProtocol

extension SQLStore {
    public func addException(agent: AgentID, _ report: ExceptionReport, now: Date) async throws -> ExceptionView {
        try await engine.write { db in
            let at = report.at.map { min($0, now) } ?? now
            guard let id = try Int64.fetchOne(db, sql: """
                INSERT INTO agent_exceptions (agent_id, type, message, context, task_id, at) VALUES (?, ?, ?, ?, ?, ?)
                RETURNING id
                """, arguments: [agent.rawValue, report.type, report.message, try Self.json(report.context),
                                 report.task?.rawValue, at.timeIntervalSince1970]) else {
                throw PaddockError.conflict("the exception was not stored")
            }
            return ExceptionView(id: id, agent: agent, type: report.type, message: report.message,
                                 context: report.context, task: report.task, at: at)
        }
    }

    public func exceptions(agent: AgentID, page: PageRequest) async throws -> Page<ExceptionView> {
        try await engine.read { db in
            guard try SQLRow.fetchOne(db, sql: "SELECT id FROM agents WHERE id = ?", arguments: [agent.rawValue]) != nil else {
                throw PaddockError.notFound("agent \(agent)")
            }
            let rows = try SQLRow.fetchAll(db, sql: """
                SELECT * FROM agent_exceptions WHERE agent_id = ? AND id > ? ORDER BY id LIMIT ?
                """, arguments: [agent.rawValue, page.after, page.limit + 1])
            let items = try rows.prefix(page.limit).map { row in
                ExceptionView(id: row["id"], agent: agent, type: row["type"], message: row["message"],
                              context: try Self.decode([String: String].self, row["context"]),
                              task: (row["task_id"] as Int64?).map(TaskID.init(rawValue:)),
                              at: Date(timeIntervalSince1970: row["at"]))
            }
            return Page(items: items, next: rows.count > page.limit ? items.last.map { String($0.id) } : nil)
        }
    }

    /// Series samples are kept at most every `seriesStep` seconds for `seriesSpan` seconds: bounded
    /// however long the farm runs (24 h at 10 s is 8 640 samples per agent).
    static let seriesStep: Double = 10
    static let seriesSpan: Double = 24 * 3600

    static func store(_ db: any SQLDatabase, metrics: HostMetrics, agent: AgentID, now: Date) throws {
        let text = try json(metrics)
        try db.execute(sql: "UPDATE agents SET metrics = ? WHERE id = ?", arguments: [text, agent.rawValue])
        let last = try Double.fetchOne(db, sql: "SELECT MAX(at) FROM agent_metrics WHERE agent_id = ?",
                                       arguments: [agent.rawValue])
        let at = now.timeIntervalSince1970
        guard last.map({ at - $0 >= seriesStep }) ?? true else { return }
        try db.execute(sql: """
            INSERT INTO agent_metrics (agent_id, at, sample) VALUES (?, ?, ?)
            ON CONFLICT (agent_id, at) DO UPDATE SET sample = excluded.sample
            """,
                       arguments: [agent.rawValue, at, text])
        try db.execute(sql: "DELETE FROM agent_metrics WHERE agent_id = ? AND at < ?",
                       arguments: [agent.rawValue, at - seriesSpan])
    }

    static func store(_ db: any SQLDatabase, usage: TaskUsage, task: TaskID, agent: AgentID, epoch: LeaseEpoch) throws {
        try db.execute(sql: """
            UPDATE tasks SET cpu_seconds = \(db.dialect.greatest)(COALESCE(cpu_seconds, 0), ?),
                             peak_rss = \(db.dialect.greatest)(COALESCE(peak_rss, 0), ?, ?)
            WHERE id = ? AND agent_id = ? AND epoch = ?
            """, arguments: [usage.cpuSeconds, usage.peakRSS, usage.rss, task.rawValue, agent.rawValue, epoch.rawValue])
    }

    public func metricsSeries(agent: AgentID, since: Date) async throws -> [HostMetrics] {
        try await engine.read { db in
            guard try SQLRow.fetchOne(db, sql: "SELECT id FROM agents WHERE id = ?", arguments: [agent.rawValue]) != nil else {
                throw PaddockError.notFound("agent \(agent)")
            }
            return try String.fetchAll(db, sql: """
                SELECT sample FROM agent_metrics WHERE agent_id = ? AND at >= ? ORDER BY at LIMIT 10000
                """, arguments: [agent.rawValue, since.timeIntervalSince1970]).map { try Self.decode(HostMetrics.self, $0) }
        }
    }

    /// Tasks by state from the tally once the master has counted them (`countTasks`), else counted
    /// here; agents and jobs are counted here (a farm has far fewer of them than of tasks).
    public func summary() async throws -> FarmSummary {
        // Other masters' writes are not in this master's tally: on PostgreSQL it is taken again now and then.
        if engine.dialect.engine == .postgres, tally.counts != nil, tally.isOlder(than: TaskTally.recountEvery) {
            try await countTasks()
        }
        let tallied = tally.counts
        return try await engine.read { db in
            let tasks = try tallied ?? Self.countTasks(db)
            var agents: [AgentState: Int] = [:]
            for row in try SQLRow.fetchAll(db, sql: "SELECT * FROM agents") { agents[Self.agentState(row), default: 0] += 1 }
            let jobs = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE archived = 0") ?? 0
            return FarmSummary(jobs: jobs, tasks: tasks, agents: agents)
        }
    }

    /// Counts the tasks by state, once, for the tally to keep from then on (at a master's start).
    public func countTasks() async throws {
        let started = ContinuousClock.now
        tally.set(try await engine.read { db in try Self.countTasks(db) }, at: started)
    }

    static func countTasks(_ db: any SQLDatabase) throws -> [TaskState: Int] {
        var tasks: [TaskState: Int] = [:]
        for row in try SQLRow.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM tasks GROUP BY state") {
            if let state = TaskState(rawValue: row["state"]) { tasks[state] = row["n"] }
        }
        return tasks
    }
}
