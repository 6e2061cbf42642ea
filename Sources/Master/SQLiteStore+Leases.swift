import Foundation
import GRDB
import PaddockProtocol

/// Claims, reports and the sweeper: everything that moves a task along the
/// state machine. Each move is an UPDATE conditioned on the state the table
/// allows it from (and on the epoch, for agent reports), so a move that lost a
/// race changes nothing.
extension SQLiteStore {
    /// How many queued candidates one claim looks at, at most.
    static let claimScanLimit = 512

    public func claim(_ order: ClaimOrder) async throws -> [TaskLease] {
        try await pool.write { db in
            guard let agent = try Row.fetchOne(db, sql: "SELECT * FROM agents WHERE id = ?",
                                               arguments: [order.agent.rawValue]) else {
                throw PaddockError.notFound("agent \(order.agent)")
            }
            guard Self.agentState(agent).mayClaim else { return [] }
            let total = ResourceVector(milliCPUs: agent["cpu_millis"], ram: agent["ram"], disk: agent["disk"], gpus: agent["gpus"])
            // What the master has leased to this agent counts against it, whatever the agent believes.
            let used = try Row.fetchOne(db, sql: """
                SELECT COALESCE(SUM(cpu_millis),0) AS c, COALESCE(SUM(ram),0) AS r, COALESCE(SUM(disk),0) AS d,
                       COALESCE(SUM(gpus),0) AS g FROM tasks WHERE agent_id = ? AND state IN ('assigned','running')
                """, arguments: [order.agent.rawValue])
            var free = total - ResourceVector(milliCPUs: used?["c"] ?? 0, ram: used?["r"] ?? 0,
                                               disk: used?["d"] ?? 0, gpus: used?["g"] ?? 0)
            if let reported = order.reportedFree { free = free.clamped(to: reported) }
            guard free.isNonNegative else { return [] }
            let tags = Set(try Self.decode([String].self, agent["tags"]))

            let rows = try Row.fetchAll(db, sql: """
                SELECT t.id, t.job_id, t.cpu_millis, t.ram, t.disk, t.gpus, t.tags FROM tasks t
                JOIN jobs j ON j.id = t.job_id AND j.paused = 0
                WHERE t.state = 'queued' AND t.cpu_millis <= ? AND t.ram <= ? AND t.disk <= ? AND t.gpus <= ?
                ORDER BY t.priority DESC, t.id LIMIT ?
                """, arguments: [free.milliCPUs, free.ram, free.disk, free.gpus, Self.claimScanLimit])
            let candidates = try rows.map { row in
                ClaimPolicy.Candidate(task: TaskID(rawValue: row["id"]), job: JobID(rawValue: row["job_id"]),
                                      requirements: try Self.requirements(row))
            }
            let chosen = ClaimPolicy().select(
                from: candidates, for: .init(free: free, tags: tags, slots: order.slots))

            let to = try TaskState.queued.applying(.assign)
            var leases: [TaskLease] = []
            for candidate in chosen {
                guard let row = try Row.fetchOne(db, sql: """
                    UPDATE tasks SET state = ?, agent_id = ?, epoch = epoch + 1, lease_expires_at = ?, progress = 0
                    WHERE id = ? AND state = 'queued' RETURNING *
                    """, arguments: [to.rawValue, order.agent.rawValue, order.leaseUntil.timeIntervalSince1970,
                                     candidate.task.rawValue]) else { continue }
                let view = try Self.taskView(row)
                try Self.record(db, task: view.id, .assign, from: .queued, to: to, agent: order.agent,
                                epoch: view.epoch, reason: nil, now: order.now)
                leases.append(TaskLease(task: view.id, job: view.jobID, name: view.name, epoch: view.epoch,
                                        command: view.command, env: view.env, cwd: view.cwd,
                                        requirements: view.requirements, timeout: view.timeout, attempt: view.attempt + 1))
            }
            return leases
        }
    }

    public func start(task: TaskID, agent: AgentID, epoch: LeaseEpoch, leaseUntil: Date, now: Date) async throws -> TaskView {
        try await pool.write { db in
            let current = try Self.leasedTask(db, task, agent: agent, epoch: epoch)
            if current.state == .running { return current }  // a resent start
            let to = try Self.legal(current, .start)
            try db.execute(sql: """
                UPDATE tasks SET state = ?, attempt = attempt + 1, started_at = ?, lease_expires_at = ?,
                    exit_code = NULL, reason = NULL, finished_at = NULL
                WHERE id = ? AND epoch = ? AND state = ?
                """, arguments: [to.rawValue, now.timeIntervalSince1970, leaseUntil.timeIntervalSince1970,
                                 task.rawValue, epoch.rawValue, current.state.rawValue])
            try Self.record(db, task: task, .start, from: current.state, to: to, agent: agent, epoch: epoch,
                            reason: nil, now: now)
            return try Self.taskView(db, task)
        }
    }

    public func progress(task: TaskID, agent: AgentID, epoch: LeaseEpoch, progress: Double, leaseUntil: Date,
                         now: Date) async throws {
        try await pool.write { db in
            let current = try Self.leasedTask(db, task, agent: agent, epoch: epoch)
            guard current.state == .running else {
                throw PaddockError.conflict("task \(task) is \(current.state.rawValue), not running")
            }
            try db.execute(sql: "UPDATE tasks SET progress = ?, lease_expires_at = ? WHERE id = ? AND epoch = ?",
                           arguments: [progress, leaseUntil.timeIntervalSince1970, task.rawValue, epoch.rawValue])
        }
    }

    public func finish(task: TaskID, agent: AgentID, report: FinishReport, now: Date) async throws -> TaskView {
        try await pool.write { db in
            // Finishing is idempotent: a finish already recorded under this epoch answers the same again.
            let recorded = try Bool.fetchOne(db, sql: """
                SELECT EXISTS (SELECT 1 FROM task_events WHERE task_id = ? AND epoch = ? AND agent_id = ?
                               AND transition IN ('succeed','fail','retry_after_failure','release'))
                """, arguments: [task.rawValue, report.epoch.rawValue, agent.rawValue]) ?? false
            if recorded { return try Self.taskView(db, task) }

            let current = try Self.leasedTask(db, task, agent: agent, epoch: report.epoch)
            let transition: TaskTransition
            switch report.outcome {
            case .succeeded: transition = .succeed
            case .failed: transition = RetryPolicy.transitionAfterFailure(attempt: current.attempt, maxAttempts: current.maxAttempts)
            case .released: transition = .release
            }
            let to = try Self.legal(current, transition)
            // A released run was not the task's fault: it does not use an attempt.
            let attemptChange = transition == .release && current.state == .running ? -1 : 0
            let finishedAt: Double? = to.isTerminal ? now.timeIntervalSince1970 : nil
            try db.execute(sql: """
                UPDATE tasks SET state = ?, exit_code = ?, reason = ?, finished_at = ?, lease_expires_at = NULL,
                    attempt = attempt + ?, progress = CASE WHEN ? = 'succeeded' THEN 1 ELSE progress END
                WHERE id = ? AND epoch = ? AND state = ?
                """, arguments: [to.rawValue, report.exitCode, report.reason, finishedAt, attemptChange, to.rawValue,
                                 task.rawValue, report.epoch.rawValue, current.state.rawValue])
            try Self.record(db, task: task, transition, from: current.state, to: to, agent: agent,
                            epoch: report.epoch, reason: report.reason, now: now)
            return try Self.taskView(db, task)
        }
    }

    public func sweep(now: Date, silentSince: Date) async throws -> SweepResult {
        try await pool.write { db in
            var result = SweepResult()
            try db.execute(sql: "UPDATE agents SET state = 'offline' WHERE state = 'online' AND last_seen < ?",
                           arguments: [silentSince.timeIntervalSince1970])
            result.agentsMarkedOffline = db.changesCount
            let expired = try Row.fetchAll(db, sql: """
                SELECT * FROM tasks WHERE lease_expires_at < ? AND state IN ('assigned','running') LIMIT 10000
                """, arguments: [now.timeIntervalSince1970])
            for row in expired {
                let task = try Self.taskView(row)
                // A running task whose lease ran out used an attempt; with none left it fails for good.
                let transition: TaskTransition = task.state == .running && task.attempt >= task.maxAttempts ? .fail : .expireLease
                let to = try Self.legal(task, transition)
                try db.execute(sql: """
                    UPDATE tasks SET state = ?, lease_expires_at = NULL, reason = ?, finished_at = ?
                    WHERE id = ? AND epoch = ? AND state = ?
                    """, arguments: [to.rawValue, "lease expired", to.isTerminal ? now.timeIntervalSince1970 : nil,
                                     task.id.rawValue, task.epoch.rawValue, task.state.rawValue])
                try Self.record(db, task: task.id, transition, from: task.state, to: to, agent: task.agent,
                                epoch: task.epoch, reason: "lease expired", now: now)
                if to == .queued { result.tasksRequeued += 1 } else { result.tasksFailed += 1 }
            }
            return result
        }
    }

    public func extendLeases(until: Date) async throws {
        try await pool.write { db in
            try db.execute(sql: """
                UPDATE tasks SET lease_expires_at = MAX(lease_expires_at, ?)
                WHERE lease_expires_at IS NOT NULL AND state IN ('assigned','running')
                """, arguments: [until.timeIntervalSince1970])
            // Agents get the same grace: none is marked offline because the master blinked.
            try db.execute(sql: "UPDATE agents SET last_seen = MAX(last_seen, ?) WHERE state = 'online'",
                           arguments: [Date().timeIntervalSince1970])
        }
    }

    // MARK: helpers

    /// The task, if `agent` holds it under `epoch`; otherwise the 409 that fences a stale report.
    static func leasedTask(_ db: Database, _ task: TaskID, agent: AgentID, epoch: LeaseEpoch) throws -> TaskView {
        let view = try taskView(db, task)
        guard view.agent == agent, view.epoch == epoch, view.state.isLeased else {
            throw PaddockError.staleEpoch(task: task, sent: epoch, current: view.epoch)
        }
        return view
    }

    static func legal(_ task: TaskView, _ transition: TaskTransition) throws -> TaskState {
        do {
            return try task.state.applying(transition)
        } catch {
            throw PaddockError.illegalTransition(task.id, from: task.state, via: transition)
        }
    }

    static func taskView(_ db: Database, _ id: TaskID) throws -> TaskView {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM tasks WHERE id = ?", arguments: [id.rawValue]) else {
            throw PaddockError.notFound("task \(id)")
        }
        return try taskView(row)
    }

    static func record(_ db: Database, task: TaskID, _ transition: TaskTransition, from: TaskState, to: TaskState,
                       agent: AgentID?, epoch: LeaseEpoch, reason: String?, now: Date) throws {
        try db.execute(sql: """
            INSERT INTO task_events (task_id, at, transition, from_state, to_state, agent_id, epoch, reason)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [task.rawValue, now.timeIntervalSince1970, transition.rawValue, from.rawValue, to.rawValue,
                             agent?.rawValue, epoch.rawValue, reason])
    }
}
