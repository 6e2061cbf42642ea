import Foundation
import PaddockProtocol

/// Claims, reports and the sweeper: everything that moves a task along the
/// state machine. Each move is an UPDATE conditioned on the state the table
/// allows it from (and on the epoch, for agent reports), so a move that lost a
/// race changes nothing.
extension SQLStore {
    public func claim(_ order: ClaimOrder) async throws -> ClaimOutcome {
        try await engine.write(lockingAgent: order.agent.rawValue) { db in try Self.claim(db, order) }
    }

    /// Leases to `order.agent` the best queued tasks that fit it. With `order.startAtOnce` the tasks
    /// that fit its free room are recorded running at once (the agent execs them on the answer, no
    /// start report); prefetched ones stay assigned until a later exchange confirms their start.
    static func claim(_ db: any SQLDatabase, _ order: ClaimOrder) throws -> ClaimOutcome {
        // The agent's row lock serialises claims and starts for one agent across masters:
        // what it is committed to is read and added to by one transaction at a time.
        guard let agent = try SQLRow.fetchOne(db, sql: "SELECT * FROM agents WHERE id = ?\(db.lockRows)",
                                              arguments: [order.agent.rawValue]) else {
            throw PaddockError.notFound("agent \(order.agent)")
        }
        guard Self.agentState(agent).mayClaim else { return ClaimOutcome(leases: [], stolen: 0, room: .none) }
        let total = ResourceVector(milliCPUs: agent["cpu_millis"], ram: agent["ram"], disk: agent["disk"], gpus: agent["gpus"])
        let load = try Self.load(db, agent: order.agent)
        var free = total - load.committed
        if let reported = order.reportedFree { free = free.clamped(to: reported) }
        let tags = Set(try Self.decode([String].self, agent["tags"]))
        // With its capacity known the master counts the agent's busy slots itself: two claims of one
        // agent in flight at once (a long-poll and an exchange with reports) never exceed it.
        var slots = order.slots
        if let capacity = order.capacity {
            slots = max(0, min(slots, capacity - load.busy))
        }
        guard slots > 0 || order.prefetch > 0 else { return ClaimOutcome(leases: [], stolen: 0, room: .none) }
        // A small window first (a few candidates per task asked for); the full windows only when
        // it was full and did not give the agent what it asked.
        let wanted = slots + max(0, order.prefetch)
        var (candidates, complete) = try Self.candidates(db, fitting: total, agent: order.agent,
                                                         blocklistAfter: order.blocklistAfter, perJob: false,
                                                         limit: max(16, wanted * 4))
        let ownerLoad = Dictionary(uniqueKeysWithValues: try SQLRow.fetchAll(db, sql: """
            SELECT owner, SUM(active) AS n FROM jobs WHERE active > 0 GROUP BY owner
            """).map { ($0["owner"] as String, $0["n"] as Int) })
        let prefetchWanted = order.prefetch > 0 ? order.prefetch - load.waiting : 0

        let policy = ClaimPolicy()
        func choose() -> [(ClaimPolicy.Candidate, Bool)] {
            var chosen: [(ClaimPolicy.Candidate, Bool)] = []
            if free.isNonNegative {
                chosen = policy.select(from: candidates, for: .init(free: free, tags: tags, slots: slots,
                                                                     ownerLoad: ownerLoad)).map { ($0, false) }
            }
            if prefetchWanted > 0 {
                let taken = Set(chosen.map(\.0.task))
                let extras = policy.prefetch(from: candidates.filter { !taken.contains($0.task) }, total: total, tags: tags,
                                             count: prefetchWanted, ownerLoad: ownerLoad)
                chosen += extras.map { ($0, true) }
            }
            return chosen
        }
        var chosen = choose()
        // The head of the queue held too little this agent can run (tags it lacks, say): look at the
        // head of each job too before settling for less.
        if !complete && chosen.count < slots + max(0, prefetchWanted) {
            // Per-job windows too when tags kept the agent from the head of the queue.
            let tagged = candidates.contains(where: { !ClaimPolicy.hasTags($0.requirements, tags) })
            (candidates, complete) = try Self.candidates(db, fitting: total, agent: order.agent,
                                                         blocklistAfter: order.blocklistAfter, perJob: tagged)
            chosen = choose()
        }

        var leases: [TaskLease] = []
        var regexes: [JobID: String?] = [:]
        let assigned = try TaskState.queued.applying(.assign)
        let started = try assigned.applying(.start)
        // Assigned, and for a lease that runs at once started too, in one statement for all the chosen
        // tasks of a kind (on PostgreSQL a statement is a round trip): both moves are recorded in the
        // history as the table has them. A task another claim took meanwhile is not returned.
        var rows: [TaskID: SQLRow] = [:]
        func update(_ ids: [TaskID], runNow: Bool, prefetched: Bool) throws {
            guard !ids.isEmpty else { return }
            let list = inList(ids.map(\.rawValue))
            let found: [SQLRow]
            if runNow {
                found = try SQLRow.fetchAll(db, sql: """
                    UPDATE tasks SET state = ?, agent_id = ?, epoch = epoch + 1, lease_expires_at = ?, progress = 0,
                        prefetched = 0, attempt = attempt + 1, runs = runs + 1, started_at = ?, exit_code = NULL, reason = NULL,
                        finished_at = NULL, grant_incarnation = ?, grant_sequence = ?
                    WHERE id IN (\(list.marks)) AND state = 'queued' RETURNING *
                    """, arguments: [started.rawValue, order.agent.rawValue, order.leaseUntil.timeIntervalSince1970,
                                     order.now.timeIntervalSince1970, order.exchange?.incarnation,
                                     order.exchange?.sequence] + list.arguments)
            } else {
                found = try SQLRow.fetchAll(db, sql: """
                    UPDATE tasks SET state = ?, agent_id = ?, epoch = epoch + 1, lease_expires_at = ?,
                        progress = 0, prefetched = ?, grant_incarnation = ?, grant_sequence = ?
                    WHERE id IN (\(list.marks)) AND state = 'queued' RETURNING *
                    """, arguments: [assigned.rawValue, order.agent.rawValue, order.leaseUntil.timeIntervalSince1970,
                                     prefetched, order.exchange?.incarnation, order.exchange?.sequence] + list.arguments)
            }
            for row in found { rows[TaskID(rawValue: row["id"])] = row }
        }
        let runsNow = { (prefetched: Bool) in order.startAtOnce && !prefetched }
        try update(chosen.filter { runsNow($0.1) }.map(\.0.task), runNow: true, prefetched: false)
        for prefetched in [false, true] {
            try update(chosen.filter { $0.1 == prefetched && !runsNow($0.1) }.map(\.0.task), runNow: false, prefetched: prefetched)
        }
        for (candidate, prefetched) in chosen {
            guard let row = rows[candidate.task] else { continue }
            let runNow = runsNow(prefetched)
            let view = try Self.taskView(row)
            try Self.record(db, task: view.id, .assign, from: .queued, to: assigned,
                            agent: order.agent, epoch: view.epoch, reason: prefetched ? "prefetch" : nil, now: order.now)
            if runNow {
                try Self.record(db, task: view.id, .start, from: assigned, to: started, agent: order.agent,
                                epoch: view.epoch, reason: nil, now: order.now)
            }
            if regexes[view.jobID] == nil {
                regexes[view.jobID] = .some(try String.fetchOne(db, sql: "SELECT progress_regex FROM jobs WHERE id = ?",
                                                                arguments: [view.jobID.rawValue]))
            }
            leases.append(Self.lease(view, prefetched: prefetched, progressRegex: regexes[view.jobID] ?? nil))
        }
        var stolen = 0
        if leases.isEmpty && slots > 0 && free.isNonNegative && order.maySteal {
            var stealing = order
            stealing.slots = slots
            stolen = try Self.steal(db, for: stealing, free: free, tags: tags)
        }
        var outcome = ClaimOutcome(leases: leases, stolen: stolen)
        if leases.isEmpty {
            // A prefetch takes what fits the agent's totals; a claim for its slots what fits its free room.
            let fits = prefetchWanted > 0 ? total : slots > 0 && free.isNonNegative ? free : nil
            outcome.room = ClaimRoom(fits: fits, tags: tags,
                                     blockedJobs: fits == nil ? [] : try Self.blockingJobs(db, agent: order.agent,
                                                                                            after: order.blocklistAfter))
        }
        return outcome
    }

    /// The jobs that no longer lease to `agent` (it failed their tasks `after` times), at most 256 of
    /// them: one left out only costs a held claim a wake-up for work it cannot take.
    static func blockingJobs(_ db: any SQLDatabase, agent: AgentID, after: Int) throws -> Set<JobID> {
        Set(try Int64.fetchAll(db, sql: "SELECT job_id FROM job_blocklist WHERE agent_id = ? AND failures >= ? LIMIT 256",
                               arguments: [agent.rawValue, after]).map(JobID.init(rawValue:)))
    }

    /// The condition of a held lease, spelled as the partial index `tasks_held` (schema v14) spells it:
    /// SQLite uses a partial index only for a query that repeats its condition word for word, so
    /// queries on held leases say it through this (`QueryPlanTests` checks their plans). `alias`
    /// qualifies the column (`t`).
    static func held(in alias: String? = nil) -> String {
        "\(alias.map { $0 + "." } ?? "")state IN ('assigned','running')"
    }

    /// The leases whose room counts against the agent: running tasks and assigned ones it reserved
    /// room for (prefetched ones take room only once started).
    static let committing = "(state = 'running' OR (state = 'assigned' AND prefetched = 0))"

    /// What the agent holds, in one pass over its leases: the room its committed ones take (see
    /// `committing`), how many they are (its busy slots), and how many prefetched ones wait.
    static func load(_ db: any SQLDatabase, agent: AgentID) throws -> (committed: ResourceVector, busy: Int, waiting: Int) {
        let used = try SQLRow.fetchOne(db, sql: """
            SELECT COALESCE(SUM(CASE WHEN \(Self.committing) THEN cpu_millis ELSE 0 END),0) AS c,
                   COALESCE(SUM(CASE WHEN \(Self.committing) THEN ram ELSE 0 END),0) AS r,
                   COALESCE(SUM(CASE WHEN \(Self.committing) THEN disk ELSE 0 END),0) AS d,
                   COALESCE(SUM(CASE WHEN \(Self.committing) THEN gpus ELSE 0 END),0) AS g,
                   COALESCE(SUM(CASE WHEN \(Self.committing) THEN 1 ELSE 0 END),0) AS busy,
                   COALESCE(SUM(CASE WHEN state = 'assigned' AND prefetched = 1 THEN 1 ELSE 0 END),0) AS waiting
            FROM tasks WHERE agent_id = ? AND \(Self.held())
            """, arguments: [agent.rawValue])
        let committed = ResourceVector(milliCPUs: used?["c"] ?? 0, ram: used?["r"] ?? 0, disk: used?["d"] ?? 0,
                                       gpus: used?["g"] ?? 0)
        return (committed, used?["busy"] ?? 0, used?["waiting"] ?? 0)
    }

    /// Queued tasks the agent could run, from two windows: the head of the whole queue (priority,
    /// then age), and the head of each job with queued work, so that a small job behind a huge one
    /// of another owner is seen (fair share needs to see it to prefer it).
    /// `perJob`: look at the per-job windows even with one owner queued. `complete` in the answer:
    /// nothing fitting was left out of the windows that could change the choice.
    static func candidates(_ db: any SQLDatabase, fitting total: ResourceVector, agent: AgentID,
                           blocklistAfter: Int, perJob: Bool, limit: Int? = nil)
        throws -> (candidates: [ClaimPolicy.Candidate], complete: Bool) {
        let columns = "t.id, t.job_id, t.cpu_millis, t.ram, t.disk, t.gpus, t.tags, t.priority, j.owner"
        let fits = """
            t.state = 'queued' AND t.cpu_millis <= ? AND t.ram <= ? AND t.disk <= ? AND t.gpus <= ?
            AND NOT EXISTS (SELECT 1 FROM job_blocklist b WHERE b.job_id = t.job_id AND b.agent_id = ? AND b.failures >= ?)
            """
        let fitArguments: [any SQLBindable] = [total.milliCPUs, total.ram, total.disk, total.gpus,
                                                            agent.rawValue, blocklistAfter]
        // Candidates another master is claiming right now are locked by it: passed over, not waited for.
        let window = db.dialect.claimWindow
        func head(_ limit: Int) throws -> [SQLRow] {
            try SQLRow.fetchAll(db, sql: """
                SELECT \(columns) FROM tasks t JOIN jobs j ON j.id = t.job_id AND j.paused = 0
                WHERE \(fits) ORDER BY t.priority DESC, t.id LIMIT \(limit)\(db.skipLocked(of: "t"))
                """, arguments: fitArguments)
        }
        var global = min(limit ?? window.global, window.global)
        var rows = try head(global)
        // The per-job windows serve fair share between owners: with the whole fitting queue already in
        // the head, or one owner alone with queued work, they would only repeat it. Skipping them keeps
        // a claim's cost independent of how many jobs are queued.
        let sawAll = rows.count < global
        let owners = sawAll ? 1 : try Int.fetchOne(db, sql: """
            SELECT COUNT(*) FROM (SELECT DISTINCT owner FROM jobs WHERE queued > 0 AND paused = 0 LIMIT 2) AS o
            """) ?? 0
        let windows = !sawAll && (perJob || owners >= 2)
        if windows && global < window.global {
            global = window.global
            rows = try head(global)
        }
        let jobs = !windows ? [] : try Int64.fetchAll(db, sql: """
            SELECT id FROM jobs WHERE queued > 0 AND paused = 0 ORDER BY priority DESC, id LIMIT \(window.jobs)
            """)
        for job in jobs {
            rows += try SQLRow.fetchAll(db, sql: """
                SELECT \(columns) FROM tasks t JOIN jobs j ON j.id = t.job_id
                WHERE t.job_id = ? AND \(fits) ORDER BY t.priority DESC, t.id LIMIT \(window.perJob)\(db.skipLocked(of: "t"))
                """, arguments: [job] + fitArguments)
        }
        var seen: Set<Int64> = []
        let candidates = try rows.compactMap { row -> ClaimPolicy.Candidate? in
            let id: Int64 = row["id"]
            guard seen.insert(id).inserted else { return nil }
            return ClaimPolicy.Candidate(task: TaskID(rawValue: id), job: JobID(rawValue: row["job_id"]),
                                         requirements: try requirements(row), priority: row["priority"], owner: row["owner"])
        }
        return (candidates, sawAll || windows)
    }

    /// Work stealing: nothing queued fits, so ask the agent with the largest backlog of prefetched
    /// (assigned, not started) tasks to give back at most half of it, a `give_back` command each.
    /// Nothing changes hands here: the victim may have started a lease whose start is still on its
    /// way, and taking it would run the task twice. It releases those it has not started (they are
    /// queued again, and the finish wakes the waiting claims: the thief's takes them) and keeps
    /// the others. Returns how many it was asked for; a lease already asked for is not asked again
    /// while that command lives, and at most half a backlog is asked for at once.
    static func steal(_ db: any SQLDatabase, for order: ClaimOrder, free: ResourceVector, tags: Set<String>) throws -> Int {
        // `held`, implied by `state = 'assigned'`, is written out where a query finds the victims'
        // leases by agent: through `tasks_held` (the middle one reaches tasks by primary key).
        let victims = try SQLRow.fetchAll(db, sql: """
            SELECT agent_id, COUNT(*) AS n FROM tasks
            WHERE \(Self.held()) AND state = 'assigned' AND prefetched = 1 AND agent_id != ?
            GROUP BY agent_id ORDER BY n DESC LIMIT 3
            """, arguments: [order.agent.rawValue])
        for victimRow in victims {
            let victim = AgentID(rawValue: victimRow["agent_id"])
            let backlog: Int = victimRow["n"]
            // At most half the backlog is asked for at once: asks not answered yet count.
            let unanswered = try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM agent_commands c JOIN tasks t ON t.id = c.task_id AND t.epoch = c.epoch
                WHERE c.agent_id = ? AND c.kind = 'give_back' AND c.expires_at > ?
                  AND t.agent_id = c.agent_id AND t.state = 'assigned' AND t.prefetched = 1
                """, arguments: [victim.rawValue, order.now.timeIntervalSince1970]) ?? 0
            let allowance = (backlog + 1) / 2 - unanswered
            guard allowance > 0 else { continue }
            // Only the newest half is looked at: the victim starts its backlog oldest first, so what is
            // asked for is what it would start last (and most likely still has not).
            let rows = try SQLRow.fetchAll(db, sql: """
                SELECT t.*, j.owner FROM tasks t JOIN jobs j ON j.id = t.job_id AND j.paused = 0
                WHERE t.agent_id = ? AND \(Self.held(in: "t")) AND t.state = 'assigned' AND t.prefetched = 1
                  AND NOT EXISTS (SELECT 1 FROM job_blocklist b WHERE b.job_id = t.job_id AND b.agent_id = ? AND b.failures >= ?)
                  AND NOT EXISTS (SELECT 1 FROM agent_commands c WHERE c.agent_id = t.agent_id AND c.kind = 'give_back'
                                  AND c.task_id = t.id AND c.epoch = t.epoch AND c.expires_at > ?)
                ORDER BY t.id DESC LIMIT \(min(256, (backlog + 1) / 2))\(db.skipLocked(of: "t"))
                """, arguments: [victim.rawValue, order.agent.rawValue, order.blocklistAfter, order.now.timeIntervalSince1970])
            var epochs: [TaskID: LeaseEpoch] = [:]
            let candidates = try rows.map { row in
                epochs[TaskID(rawValue: row["id"])] = LeaseEpoch(row["epoch"])
                return ClaimPolicy.Candidate(task: TaskID(rawValue: row["id"]), job: JobID(rawValue: row["job_id"]),
                                             requirements: try requirements(row), priority: row["priority"], owner: row["owner"])
            }
            let picked = ClaimPolicy().select(from: candidates, for: .init(
                free: free, tags: tags, slots: min(order.slots, allowance)))
            guard !picked.isEmpty else { continue }
            // The victim's row (its commands are numbered under it) only if no one holds it: its own
            // exchange, most likely, about to start those very tasks. Waiting for it here, while that
            // exchange waited for a task locked above, was a deadlock, which PostgreSQL breaks only
            // after its deadlock_timeout (1 s). A busy victim is passed over; nothing here waits
            // (its tasks were read SKIP LOCKED too).
            guard try SQLRow.fetchOne(db, sql: "SELECT id FROM agents WHERE id = ?\(db.skipLocked())",
                                      arguments: [victim.rawValue]) != nil else { continue }
            for candidate in picked {
                guard let epoch = epochs[candidate.task] else { continue }
                // Short-lived: a victim that does not hear it soon has started the task or is gone (its
                // lease then expires), and a later claim may ask again.
                _ = try enqueue(db, agent: victim, kind: .giveBack, task: candidate.task, epoch: epoch, now: order.now,
                                ttl: Self.giveBackTTL)
            }
            return picked.count
        }
        return 0
    }

    /// How long a `give_back` command waits for its victim.
    static let giveBackTTL: Double = 30

    static func lease(_ db: any SQLDatabase, _ view: TaskView, prefetched: Bool) throws -> TaskLease {
        lease(view, prefetched: prefetched, progressRegex: try String.fetchOne(
            db, sql: "SELECT progress_regex FROM jobs WHERE id = ?", arguments: [view.jobID.rawValue]))
    }

    /// The lease of a task just assigned (its run will be attempt + 1) or just started (attempt counted).
    static func lease(_ view: TaskView, prefetched: Bool, progressRegex: String?) -> TaskLease {
        var lease = TaskLease(task: view.id, job: view.jobID, name: view.name, epoch: view.epoch, command: view.command,
                              env: view.env, cwd: view.cwd, requirements: view.requirements, timeout: view.timeout,
                              attempt: view.state == .running ? view.attempt : view.attempt + 1, prefetched: prefetched)
        lease.progressRegex = progressRegex
        lease.frames = view.frames
        return lease
    }

    public func start(task: TaskID, agent: AgentID, epoch: LeaseEpoch, leaseUntil: Date, now: Date) async throws -> TaskView {
        try await engine.write(lockingAgent: agent.rawValue) { db in try Self.start(db, task: task, agent: agent, epoch: epoch, leaseUntil: leaseUntil, now: now) }
    }

    static func start(_ db: any SQLDatabase, task: TaskID, agent: AgentID, epoch: LeaseEpoch, leaseUntil: Date,
                      now: Date) throws -> TaskView {
        try startRun(db, task: task, agent: agent, epoch: epoch, leaseUntil: leaseUntil, now: now, agentLocked: false)
        return try Self.taskView(db, task)
    }

    /// Reads (and in PostgreSQL locks) the agent's row, first of all in a transaction about its
    /// leases; with `credential` (a hash not checked yet), unauthorized unless it is the agent's.
    static func lockAgent(_ db: any SQLDatabase, _ agent: AgentID, credential: String? = nil) throws {
        guard let row = try SQLRow.fetchOne(db, sql: "SELECT credential_hash FROM agents WHERE id = ?\(db.lockRows)",
                                            arguments: [agent.rawValue]) else {
            throw credential == nil ? PaddockError.notFound("agent \(agent)") : PaddockError.unauthorized
        }
        if let credential, !SecretHash.equal(row["credential_hash"], credential) { throw PaddockError.unauthorized }
    }

    /// Records the run of a leased task started (a resent start changes nothing). The exchange calls
    /// this directly (`agentLocked`: it holds the agent's row already), and answers with no view.
    ///
    /// Fenced by epoch only: a lease that moved on (stolen, cancelled, expired) is refused. It is not
    /// refused for want of room: the agent starts a prefetched lease only into room it has, and has
    /// begun the run by the time its start arrives; the master's count can lag the agent's (a claim on
    /// another master handing out that room meanwhile, an answer lost with its connection), and a
    /// refusal would stop a run that has begun (a short one is over: it would run twice). The
    /// agent's room is exceeded for a moment instead, and claims hand it nothing until it frees up.
    static func startRun(_ db: any SQLDatabase, task: TaskID, agent: AgentID, epoch: LeaseEpoch, leaseUntil: Date,
                         now: Date, agentLocked: Bool) throws {
        // One lock order everywhere (claims, heartbeats, exchanges, starts): the agent's row, then
        // task rows. A start that took the task first could deadlock with a claim of the same agent.
        if !agentLocked { try lockAgent(db, agent) }
        try applyStart(db, try checkStart(db, task: task, agent: agent, epoch: epoch), agent: agent, epoch: epoch,
                       leaseUntil: leaseUntil, now: now)
    }

    /// A report's move, decided from its row: `check…` throws the report's refusal and writes
    /// nothing; `apply…` writes and refuses nothing. An exchange then needs no savepoint for such a
    /// report (`SQLStore.exchange`): a refused one has changed nothing.
    struct ReportMove {
        /// The row as read (locked in PostgreSQL).
        let current: LeaseState
        let transition: TaskTransition
        let to: TaskState
    }

    /// A start's move; nil for a resent start (the run is running already: nothing to write).
    static func checkStart(_ db: any SQLDatabase, task: TaskID, agent: AgentID, epoch: LeaseEpoch) throws -> ReportMove? {
        let current = try Self.fenced(try Self.leaseState(db, task), agent: agent, epoch: epoch)
        if current.state == .running { return nil }
        return ReportMove(current: current, transition: .start, to: try Self.legal(current, .start))
    }

    static func applyStart(_ db: any SQLDatabase, _ move: ReportMove?, agent: AgentID, epoch: LeaseEpoch, leaseUntil: Date,
                           now: Date) throws {
        guard let move else { return }
        let current = move.current
        // Sent, not waited for: the row is locked and read, so the UPDATE changes it (an error is
        // thrown by the transaction's next statement waited for). On PostgreSQL held, and sent with
        // the exchange's other starts.
        let row: [any SQLBindable] = [current.id.rawValue, epoch.rawValue, current.state.rawValue, move.to.rawValue,
                                      now.timeIntervalSince1970, leaseUntil.timeIntervalSince1970]
        try RunWrite.start.write(row, in: db)
        try Self.record(db, task: current.id, job: current.jobID, .start, from: current.state, to: move.to, agent: agent,
                        epoch: epoch, reason: nil, now: now)
        // The row as it is now, for the same run's next reports in this exchange (its finish, most often).
        var running = current
        running.state = move.to
        running.attempt += 1
        running.prefetched = false
        (db as? TallyingDatabase)?.knowLease(running)
    }

    public func progress(task: TaskID, agent: AgentID, epoch: LeaseEpoch, progress: Double, leaseUntil: Date,
                         now: Date) async throws {
        try await engine.write(lockingAgent: agent.rawValue) { db in
            try Self.progress(db, task: task, agent: agent, epoch: epoch, progress: progress, leaseUntil: leaseUntil)
        }
    }

    static func progress(_ db: any SQLDatabase, task: TaskID, agent: AgentID, epoch: LeaseEpoch, progress: Double,
                         leaseUntil: Date) throws {
        try checkProgress(db, task: task, agent: agent, epoch: epoch)
        try applyProgress(db, task: task, epoch: epoch, progress: progress, leaseUntil: leaseUntil)
    }

    static func checkProgress(_ db: any SQLDatabase, task: TaskID, agent: AgentID, epoch: LeaseEpoch) throws {
        let current = try Self.fenced(try Self.leaseState(db, task), agent: agent, epoch: epoch)
        guard current.state == .running else {
            throw PaddockError.conflict("task \(task) is \(current.state.rawValue), not running")
        }
    }

    static func applyProgress(_ db: any SQLDatabase, task: TaskID, epoch: LeaseEpoch, progress: Double, leaseUntil: Date) throws {
        try db.send(sql: "UPDATE tasks SET progress = ?, lease_expires_at = ? WHERE id = ? AND epoch = ?",
                       arguments: [progress, leaseUntil.timeIntervalSince1970, task.rawValue, epoch.rawValue])
    }

    public func finish(task: TaskID, agent: AgentID, report: FinishReport, now: Date) async throws -> TaskView {
        try await engine.write(lockingAgent: agent.rawValue) { db in try Self.finish(db, task: task, agent: agent, report: report, now: now) }
    }

    static func finish(_ db: any SQLDatabase, task: TaskID, agent: AgentID, report: FinishReport, now: Date) throws -> TaskView {
        try finishRun(db, task: task, agent: agent, report: report, now: now)
        return try Self.taskView(db, task)
    }

    /// Records how a run ended. The exchange calls this directly: it answers with no view.
    static func finishRun(_ db: any SQLDatabase, task: TaskID, agent: AgentID, report: FinishReport, now: Date) throws {
        try applyFinish(db, try checkFinish(db, task: task, agent: agent, report: report), agent: agent, report: report, now: now)
    }

    /// A finish's move; nil for a finish already recorded under this epoch (finishing is idempotent:
    /// the run is no longer leased, so it is fenced, and it answers the same again).
    static func checkFinish(_ db: any SQLDatabase, task: TaskID, agent: AgentID, report: FinishReport) throws -> ReportMove? {
        // Read (and in PostgreSQL, lock) the row first: a resent finish waits for the first one.
        let locked = try Self.leaseState(db, task)
        let current: LeaseState
        do {
            current = try Self.fenced(locked, agent: agent, epoch: report.epoch)
        } catch {
            let recorded = try Bool.fetchOne(db, sql: """
                SELECT EXISTS (SELECT 1 FROM task_events WHERE task_id = ? AND epoch = ? AND agent_id = ?
                               AND transition IN ('succeed','fail','retry_after_failure','release'))
                """, arguments: [task.rawValue, report.epoch.rawValue, agent.rawValue]) ?? false
            if recorded { return nil }
            throw error
        }
        let transition: TaskTransition
        switch report.outcome {
        case .succeeded: transition = .succeed
        case .failed: transition = RetryPolicy.transitionAfterFailure(attempt: current.attempt, maxAttempts: current.maxAttempts)
        case .released: transition = .release
        }
        return ReportMove(current: current, transition: transition, to: try Self.legal(current, transition))
    }

    static func applyFinish(_ db: any SQLDatabase, _ move: ReportMove?, agent: AgentID, report: FinishReport, now: Date) throws {
        guard let move else { return }
        let current = move.current, to = move.to
        // A released run was not the task's fault: it does not use an attempt.
        let attemptChange = move.transition == .release && current.state == .running ? -1 : 0
        let finishedAt: Double? = to.isTerminal ? now.timeIntervalSince1970 : nil
        // The usage the run reported rides the same UPDATE: the most of what any run of it used.
        let reported = report.usage == nil ? 0 : 1
        // Sent, not waited for, and on PostgreSQL held, as a start's.
        let row: [any SQLBindable] = [current.id.rawValue, report.epoch.rawValue, current.state.rawValue, to.rawValue,
                                      report.exitCode, report.reason, finishedAt, attemptChange, reported,
                                      report.usage?.cpuSeconds ?? 0, report.usage?.peakRSS ?? 0, report.usage?.rss ?? 0]
        try RunWrite.finish.write(row, in: db)
        (db as? TallyingDatabase)?.forgetLease(current.id)  // no longer as read
        try Self.record(db, task: current.id, job: current.jobID, move.transition, from: current.state, to: to, agent: agent,
                        epoch: report.epoch, reason: report.reason, now: now)
        if report.outcome == .failed { try Self.countFailure(db, job: current.jobID, agent: agent) }
    }

    /// The UPDATE of a run's start or finish, for one or many runs: each row names the task, the epoch
    /// and the state it was read in (a row that moved on meanwhile is left alone), then the values.
    /// One statement for all of an exchange's starts (and one for its finishes) on PostgreSQL, where
    /// each statement is a round trip and a parse and plan; on SQLite, in-process, one plain UPDATE by
    /// id a run (no join to plan). The values are cast for PostgreSQL, whose VALUES would otherwise
    /// type them as text.
    enum RunWrite: CaseIterable, Hashable {
        case start, finish

        static let rowsPerStatement = 256

        /// Held with the transaction's others where it holds them (PostgreSQL), else sent at once.
        func write(_ row: [any SQLBindable], in db: any SQLDatabase) throws {
            if let tallying = db as? TallyingDatabase, tallying.holdsRunWrites {
                tallying.hold(self, row.map(\.sqlValue))
            } else {
                try db.send(sql: sql(rows: 1, db.dialect), arguments: row)
            }
        }

        var columns: [(name: String, type: String)] {
            let key = [("id", "BIGINT"), ("epoch", "BIGINT"), ("from_state", "TEXT"), ("to_state", "TEXT")]
            switch self {
            case .start: return key + [("started_at", "DOUBLE PRECISION"), ("lease_until", "DOUBLE PRECISION")]
            case .finish:
                return key + [("exit_code", "BIGINT"), ("reason", "TEXT"), ("finished_at", "DOUBLE PRECISION"),
                              ("attempt_change", "BIGINT"), ("reported", "BIGINT"), ("cpu", "DOUBLE PRECISION"),
                              ("peak", "BIGINT"), ("rss", "BIGINT")]
            }
        }

        /// The statement for `rows` runs. Its parts are made once per kind and engine: built at each
        /// call, the text cost the SQLite master 0.2 ms a task.
        func sql(rows: Int, _ dialect: SQLDialect) -> String {
            let parts = (dialect.engine == .sqlite ? Self.sqliteText : Self.postgresText)[self] ?? ("", "", "")
            if dialect.engine == .sqlite { precondition(rows == 1, "SQLite writes one run a statement") }
            guard rows > 1 else { return parts.head + parts.row + parts.tail }
            return parts.head + Array(repeating: parts.row, count: rows).joined(separator: ", ") + parts.tail
        }

        private static let sqliteText = Dictionary(uniqueKeysWithValues: allCases.map { ($0, $0.text(.init(engine: .sqlite))) })
        private static let postgresText = Dictionary(uniqueKeysWithValues: allCases.map { ($0, $0.text(.init(engine: .postgres))) })

        private func text(_ dialect: SQLDialect) -> (head: String, row: String, tail: String) {
            let set = switch self {
            case .start: """
                state = v.to_state, attempt = tasks.attempt + 1, runs = tasks.runs + 1, started_at = v.started_at,
                lease_expires_at = v.lease_until, exit_code = NULL, reason = NULL, finished_at = NULL, prefetched = 0
                """
            case .finish: """
                state = v.to_state, exit_code = v.exit_code, reason = v.reason, finished_at = v.finished_at,
                lease_expires_at = NULL, attempt = tasks.attempt + v.attempt_change,
                progress = CASE WHEN v.to_state = 'succeeded' THEN 1 ELSE tasks.progress END,
                cpu_seconds = CASE WHEN v.reported = 1 THEN \(dialect.greatest)(COALESCE(tasks.cpu_seconds, 0), v.cpu)
                              ELSE tasks.cpu_seconds END,
                peak_rss = CASE WHEN v.reported = 1 THEN \(dialect.greatest)(COALESCE(tasks.peak_rss, 0), v.peak, v.rss)
                           ELSE tasks.peak_rss END
                """
            }
            if dialect.engine == .sqlite {
                // One run a statement, so no join: each `v.column` is its numbered parameter (`?N`).
                var plain = set
                for (index, column) in columns.enumerated().reversed() {
                    plain = plain.replacingOccurrences(of: "v." + column.name, with: "?\(index + 1)")
                }
                plain = plain.replacingOccurrences(of: "tasks.", with: "")
                return ("UPDATE tasks SET \(plain) WHERE id = ?1 AND epoch = ?2 AND state = ?3", "", "")
            }
            // A CTE names the columns (SQLite would have no `AS v(a, b)` for a VALUES in FROM).
            return ("WITH v(\(columns.map(\.name).joined(separator: ", "))) AS (VALUES ",
                    "(" + columns.map { "CAST(? AS \($0.type))" }.joined(separator: ", ") + ")",
                    """
                    )
                    UPDATE tasks SET \(set)
                    FROM v WHERE tasks.id = v.id AND tasks.epoch = v.epoch AND tasks.state = v.from_state
                    """)
        }
    }

    public func sweep(now: Date, silentSince: Date) async throws -> SweepResult {
        try await engine.write { db in
            var result = SweepResult()
            // Every master sweeps; one at a time does (the others skip this round). Rows a
            // heartbeat is renewing right now are locked by it: skipped, and looked at next round.
            guard try db.tryAdvisoryLock(PostgresSchema.sweepLock) else { return result }
            try Self.noteSweep(db, at: now)
            result.agentsMarkedOffline = try db.execute(sql: """
                UPDATE agents SET state = 'offline' WHERE state = 'online' AND last_seen < ?
                """, arguments: [silentSince.timeIntervalSince1970])
            // In the order of `tasks_lease`, the longest expired first: ordered by id, SQLite read the
            // whole table (every task ever submitted) in each sweep, inside the one writer.
            let expired = try SQLRow.fetchAll(db, sql: """
                SELECT * FROM tasks WHERE lease_expires_at < ? AND \(Self.held())
                ORDER BY lease_expires_at, id LIMIT 10000\(db.skipLocked())
                """, arguments: [now.timeIntervalSince1970])
            for row in expired {
                switch try Self.loseLease(db, try Self.taskView(row), reason: "lease expired", now: now) {
                case .queued?: result.tasksRequeued += 1
                case nil: break
                default: result.tasksFailed += 1
                }
            }
            return result
        }
    }

    public func extendLeases(until: Date) async throws {
        let now = clock.now()
        try await engine.write { db in try Self.extendLeases(db, until: until, now: now) }
    }

    static func extendLeases(_ db: any SQLDatabase, until: Date, now: Date) throws {
        try db.execute(sql: """
            UPDATE tasks SET lease_expires_at = \(db.dialect.greatest)(lease_expires_at, ?)
            WHERE lease_expires_at IS NOT NULL AND \(Self.held())
            """, arguments: [until.timeIntervalSince1970])
        // Agents get the same grace: none is marked offline because the master blinked.
        try db.execute(sql: "UPDATE agents SET last_seen = \(db.dialect.greatest)(last_seen, ?) WHERE state = 'online'",
                       arguments: [now.timeIntervalSince1970])
    }

    public func keepAlive(_ agents: [AgentID], now: Date) async throws {
        try await engine.write { db in
            // In slices: a statement's parameters are bounded (SQLite: 32 766).
            for slice in stride(from: 0, to: agents.count, by: 500).map({ agents[$0..<min($0 + 500, agents.count)] }) {
                let marks = Array(repeating: "?", count: slice.count).joined(separator: ",")
                try db.execute(sql: """
                    UPDATE agents SET last_seen = \(db.dialect.greatest)(last_seen, ?) WHERE state = 'online' AND id IN (\(marks))
                    """, arguments: [now.timeIntervalSince1970 as any SQLBindable] + slice.map { $0.rawValue as any SQLBindable })
            }
        }
    }

    public func syncClock() async throws -> TimeInterval {
        let before = ContinuousClock.now
        let reading = try await engine.databaseTime()
        let after = ContinuousClock.now
        // The reading was taken somewhere in the round trip: its middle is the best guess.
        return clock.sync(reading, at: before + (after - before) / 2)
    }

    /// The longest a sweeper waits between two sweeps: a gap no longer than this is no outage.
    public static let sweepAllowance: TimeInterval = 1

    public func grantGrace(leaseTimeout: Double, now: Date) async throws -> TimeInterval? {
        try await engine.write { db in
            // Under the sweep's lock: another master sweeping now means no outage; two masters starting
            // together give one grace (the second finds the gap closed).
            guard try db.tryAdvisoryLock(PostgresSchema.sweepLock) else { return nil }
            let given: TimeInterval?
            if let swept = try Double.fetchOne(db, sql: "SELECT value FROM master_state WHERE key = 'leases_swept_at'") {
                let gap = now.timeIntervalSince1970 - swept - Self.sweepAllowance
                guard gap > 0 else { return nil }
                try db.execute(sql: """
                    UPDATE tasks SET lease_expires_at = lease_expires_at + ?
                    WHERE lease_expires_at IS NOT NULL AND \(Self.held())
                    """, arguments: [gap])
                try db.execute(sql: "UPDATE agents SET last_seen = last_seen + ? WHERE state = 'online'", arguments: [gap])
                given = gap
            } else {
                try Self.extendLeases(db, until: now.addingTimeInterval(leaseTimeout), now: now)
                given = leaseTimeout
            }
            try Self.noteSweep(db, at: now)
            return given
        }
    }

    /// When leases were last looked at: an outage is a time when nobody did.
    static func noteSweep(_ db: any SQLDatabase, at now: Date) throws {
        try db.execute(sql: """
            INSERT INTO master_state (key, value) VALUES ('leases_swept_at', ?)
            ON CONFLICT (key) DO UPDATE SET value = excluded.value
            """, arguments: [now.timeIntervalSince1970])
    }

    // MARK: helpers

    /// The columns of a task row that reports are fenced and moved by: the hot path reads these, not
    /// the whole row with its command and environment.
    struct LeaseState {
        var id: TaskID
        var jobID: JobID
        var state: TaskState
        var agent: AgentID?
        var epoch: LeaseEpoch
        var attempt: Int
        var maxAttempts: Int
        var prefetched: Bool
        var resources: ResourceVector
    }

    static let leaseColumns = "id, job_id, state, agent_id, epoch, attempt, max_attempts, prefetched, cpu_millis, ram, disk, gpus"

    static func leaseState(_ db: any SQLDatabase, _ id: TaskID) throws -> LeaseState {
        if let known = (db as? TallyingDatabase)?.lease(id) { return known }
        // In a write transaction the row stays locked until commit (PostgreSQL), as `taskView` does.
        guard let row = try SQLRow.fetchOne(db, sql: """
            SELECT \(leaseColumns) FROM tasks WHERE id = ?\(db.lockRows)
            """, arguments: [id.rawValue]) else {
            throw PaddockError.notFound("task \(id)")
        }
        return leaseState(row)
    }

    /// Reads (and in PostgreSQL locks, in id order) the rows of the tasks an exchange reports on, in
    /// one statement instead of one a report; each report's `leaseState` reads its row from there. A
    /// start notes the row as it moved it and a finish drops it, so that a run started and finished
    /// in one exchange is read once.
    static func readLeases(_ db: any SQLDatabase, _ ids: [TaskID]) throws {
        guard let tallying = db as? TallyingDatabase, ids.count > 1 else { return }
        for start in stride(from: 0, to: ids.count, by: 500) {
            let list = inList(ids[start..<min(start + 500, ids.count)].map(\.rawValue))
            for row in try SQLRow.fetchAll(db, sql: """
                SELECT \(leaseColumns) FROM tasks WHERE id IN (\(list.marks)) ORDER BY id\(db.lockRows)
                """, arguments: list.arguments) {
                tallying.knowLease(leaseState(row))
            }
        }
    }

    static func leaseState(_ row: SQLRow) -> LeaseState {
        let id = TaskID(rawValue: row["id"])
        return LeaseState(id: id, jobID: JobID(rawValue: row["job_id"]), state: TaskState(rawValue: row["state"]) ?? .queued,
                          agent: (row["agent_id"] as Int64?).map(AgentID.init(rawValue:)), epoch: LeaseEpoch(row["epoch"]),
                          attempt: row["attempt"], maxAttempts: row["max_attempts"], prefetched: row["prefetched"],
                          resources: ResourceVector(milliCPUs: row["cpu_millis"], ram: row["ram"], disk: row["disk"],
                                                    gpus: row["gpus"]))
    }

    /// `task` if `agent` holds it under `epoch`; otherwise the 409 that fences a stale report.
    static func fenced(_ task: LeaseState, agent: AgentID, epoch: LeaseEpoch) throws -> LeaseState {
        guard task.agent == agent, task.epoch == epoch, task.state.isLeased else {
            throw PaddockError.staleLease(task: task.id, sent: epoch, current: task.epoch, state: task.state,
                                          heldByCaller: task.agent == agent)
        }
        return task
    }

    static func legal(_ task: TaskView, _ transition: TaskTransition) throws -> TaskState {
        try legal(task.id, task.state, transition)
    }

    static func legal(_ task: LeaseState, _ transition: TaskTransition) throws -> TaskState {
        try legal(task.id, task.state, transition)
    }

    static func legal(_ id: TaskID, _ state: TaskState, _ transition: TaskTransition) throws -> TaskState {
        do {
            return try state.applying(transition)
        } catch {
            throw PaddockError.illegalTransition(id, from: state, via: transition)
        }
    }

    static func taskView(_ db: any SQLDatabase, _ id: TaskID) throws -> TaskView {
        // In a write transaction the row stays locked until commit (PostgreSQL): the move made
        // from what was read here cannot be overtaken by another master's.
        guard let row = try SQLRow.fetchOne(db, sql: "SELECT * FROM tasks WHERE id = ?\(db.lockRows)",
                                            arguments: [id.rawValue]) else {
            throw PaddockError.notFound("task \(id)")
        }
        return try taskView(row)
    }

    /// Records a move in the task's history and sets off what it implies for its dependents.
    /// `job`: the task's job where the caller knows it (spares the dependents' lookup a read).
    static func record(_ db: any SQLDatabase, task: TaskID, job: JobID? = nil, _ transition: TaskTransition, from: TaskState,
                       to: TaskState, agent: AgentID?, epoch: LeaseEpoch, reason: String?, now: Date) throws {
        try insertEvent(db, task: task, transition, from: from, to: to, agent: agent, epoch: epoch, reason: reason, now: now)
        if from != to { try afterMove(db, task: task, job: job, to: to, now: now) }
    }

    static func insertEvent(_ db: any SQLDatabase, task: TaskID, _ transition: TaskTransition, from: TaskState, to: TaskState,
                            agent: AgentID?, epoch: LeaseEpoch, reason: String?, now: Date) throws {
        db.tallyMoved(from: from, to: to)
        if to == .queued && from != .queued { db.noteQueued(task) }
        let arguments: [any SQLBindable] = [task.rawValue, now.timeIntervalSince1970, transition.rawValue, from.rawValue,
                                            to.rawValue, agent?.rawValue, epoch.rawValue, reason]
        let values = arguments.map(\.sqlValue)
        if let tallying = db as? TallyingDatabase, tallying.buffersEvents {
            tallying.event(values)  // written with the transaction's others (TallyingDatabase)
        } else {
            try db.execute("INSERT INTO task_events (\(TallyingDatabase.eventColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)
        }
    }
}
