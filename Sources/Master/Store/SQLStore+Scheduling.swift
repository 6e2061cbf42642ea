import Foundation
import PaddockProtocol

/// Dependencies (blocked tasks, jobs after jobs), the per-job blocklist of
/// agents, and what every state change sets off for them.
extension SQLStore {
    /// After a task's move: a success may unblock its dependents (at once, or during an exchange's
    /// reports once they are all applied: `TallyingDatabase.defersDependents`); a task that fails for
    /// good (or is cancelled) cancels the tasks and jobs that wait for it at once, with that reason.
    static func afterMove(_ db: any SQLDatabase, task: TaskID, job: JobID? = nil, to: TaskState, now: Date) throws {
        switch to {
        case .succeeded:
            if let tallying = db as? TallyingDatabase, tallying.defersDependents {
                tallying.deferDependents(of: task, job: job)
            } else {
                try unblockDependents(db, of: [(task, job)], now: now)
            }
        case .failed, .cancelled: try cancelDependents(db, of: task, reason: "dependency \(task) \(to.rawValue)", now: now)
        default: break
        }
    }

    /// True when every task `task` depends on, and every job its job runs after, has succeeded.
    static func isReady(_ db: any SQLDatabase, task: TaskID, job: JobID) throws -> Bool {
        let waiting = try Int.fetchOne(db, sql: """
            SELECT (SELECT COUNT(*) FROM task_deps d JOIN tasks t ON t.id = d.depends_on
                    WHERE d.task_id = ? AND t.state != 'succeeded')
                 + CASE WHEN EXISTS (SELECT 1 FROM job_deps jd JOIN tasks t ON t.job_id = jd.after_job
                                     WHERE jd.job_id = ? AND t.state IN (\(Self.unfinished))) THEN 1 ELSE 0 END
            """, arguments: [task.rawValue, job.rawValue]) ?? 0
        return waiting == 0
    }

    /// The states other than `succeeded`, as a SQL list. A job's tasks are looked for in these
    /// states, not as `state != 'succeeded'`: the `(job_id, state)` index then seeks each state's
    /// range, where `!=` read every task of the job (all its succeeded ones), at each finish of a
    /// task of a job another waits for (quadratic in the job's size).
    static let unfinished = TaskState.allCases.filter { $0 != .succeeded }.map { "'\($0.rawValue)'" }.joined(separator: ", ")

    /// PostgreSQL: holds `job` as it is until this transaction commits, once the finishes in flight
    /// among its tasks have committed. A submission `after` the job looks at it next; a finish of its
    /// last task (or a failure) that looked for the jobs after it before this submission's commit
    /// would not see this one, which would stay blocked for good.
    /// - Its leased tasks are share-locked: a finish in flight holds its row, so this waits for its
    ///   commit and re-reads it (PostgreSQL re-checks a row it waited for); the rest cannot finish,
    ///   succeed or fail, until this commits.
    /// - With none leased, one unfinished task is held instead (`LIMIT` counts the rows it kept): a
    ///   job whose task cannot finish cannot succeed, and a queued one cannot be claimed (claims skip
    ///   locked rows), run and finished meanwhile (until session 19 nothing held it). A task that
    ///   succeeded stays so: with no row left to hold, the job has succeeded, and the look after this
    ///   sees it.
    /// The states are listed, not `<> 'succeeded'`, so that the `(job_id, state)` index finds the row
    /// whether the job is fresh or done. SQLite has one writer: nothing to wait for.
    static func holdUnfinished(_ db: any SQLDatabase, ofJob job: JobID) throws {
        guard !db.lockRows.isEmpty else { return }
        let leased = try SQLRow.fetchAll(db, sql: """
            SELECT id FROM tasks WHERE job_id = ? AND state IN ('assigned', 'running') ORDER BY id FOR SHARE
            """, arguments: [job.rawValue])
        guard leased.isEmpty else { return }
        _ = try SQLRow.fetchAll(db, sql: """
            SELECT id FROM tasks WHERE job_id = ? AND state IN (\(Self.unfinished)) LIMIT 1 FOR SHARE
            """, arguments: [job.rawValue])
    }

    /// PostgreSQL: tasks about to be retried look at their prerequisites only once no finish of one
    /// can miss them. A finish looks for blocked dependents before it commits; one that looked while
    /// a retry was not committed saw its task failed or cancelled, and the retry's look would see
    /// that prerequisite unfinished: blocked for good.
    /// - The jobs their jobs run after: their finishers take the dependents' lock of the job after
    ///   (`unblockDependents`) before they look. Taken here first, the same lock makes a finish in
    ///   flight commit before this looks, and a later one look after this commits.
    /// - Their task dependencies: every unfinished one is share-locked. A finish in flight holds its
    ///   row, so this waits for its commit; a queued one is skipped by claims (SKIP LOCKED) and a
    ///   blocked one cannot be unblocked until this commits, so none of them finishes unseen.
    ///   Those retried here too are left out: their own rows are locked first, for the update this
    ///   transaction makes (a share lock, then the update, would make two such retries each wait
    ///   for the other's), and a retry elsewhere of one of them waits for this commit.
    /// All of them before any task is retried, job by job in id order, each job's prerequisites in id
    /// order: a job's retry whose tasks wait for prerequisites in the opposite order (the first for
    /// the second's, the second for the first's) took them task by task until session 19, and met an
    /// exchange finishing both in a deadlock PostgreSQL broke after a second. Job by job, not all the
    /// jobs' locks first: an exchange that finished one job's task takes the dependents' locks of the
    /// jobs after it while it holds that task's row. SQLite has one writer: nothing to wait for.
    static func awaitPrerequisitesOfRetried(_ db: any SQLDatabase, _ tasks: [TaskView]) throws {
        guard !db.lockRows.isEmpty, !tasks.isEmpty else { return }
        let retried = Set(tasks.map(\.id.rawValue))
        try lockInIDOrder(db, retried) { "SELECT id FROM tasks WHERE id IN (\($0)) ORDER BY id FOR NO KEY UPDATE" }
        for (job, ofJob) in Dictionary(grouping: tasks, by: \.jobID.rawValue).sorted(by: { $0.key < $1.key }) {
            _ = try SQLRow.fetchAll(db, sql: """
                SELECT \(PostgresSchema.lockDependents(ofJob: "job_id")) FROM job_deps WHERE job_id = ? LIMIT 1
                """, arguments: [job])
            let ids = ofJob.map(\.id.rawValue).sorted()
            var prerequisites: Set<Int64> = []
            for start in stride(from: 0, to: ids.count, by: lockChunk) {
                let list = inList(Array(ids[start..<min(start + lockChunk, ids.count)]))
                prerequisites.formUnion(try Int64.fetchAll(db, sql: "SELECT depends_on FROM task_deps WHERE task_id IN (\(list.marks))",
                                                           arguments: list.arguments))
            }
            try lockInIDOrder(db, prerequisites.subtracting(retried)) {
                "SELECT id FROM tasks WHERE id IN (\($0)) AND state <> 'succeeded' ORDER BY id FOR SHARE"
            }
        }
    }

    /// Ids per locking statement (far under PostgreSQL's 65 535 parameters).
    static let lockChunk = 400

    /// Runs the locking statement `sql(marks)` over `ids` in id order, in chunks: in that order across
    /// the chunks too, so that every taker meets the others in one order.
    static func lockInIDOrder(_ db: any SQLDatabase, _ ids: some Collection<Int64>, _ sql: (String) -> String) throws {
        let sorted = Set(ids).sorted()
        for start in stride(from: 0, to: sorted.count, by: lockChunk) {
            let list = inList(Array(sorted[start..<min(start + lockChunk, sorted.count)]))
            _ = try SQLRow.fetchAll(db, sql: sql(list.marks), arguments: list.arguments)
        }
    }

    /// Unblocks what the successes of `tasks` (each with its job where the caller knows it) leave ready:
    /// the blocked tasks that wait for one of them, and the tasks of jobs that run after a job now
    /// succeeded as a whole. One lookup for all of them (an exchange's finishes come together).
    static func unblockDependents(_ db: any SQLDatabase, of tasks: [(task: TaskID, job: JobID?)], now: Date) throws {
        var jobs: [Int64] = []
        var seenJobs: Set<Int64> = []
        for (task, known) in tasks {
            guard let job = try known?.rawValue
                    ?? Int64.fetchOne(db, sql: "SELECT job_id FROM tasks WHERE id = ?", arguments: [task.rawValue])
            else { continue }
            if seenJobs.insert(job).inserted { jobs.append(job) }
        }
        guard !jobs.isEmpty else { return }
        var candidates: [(TaskID, JobID)] = []
        var waitedFor: Set<Int64> = []
        // The blocked tasks that wait for these and, as rows with id 0, the jobs among theirs that some
        // job waits for (one statement: this runs at every success). Such a job may have just succeeded
        // as a whole: then the jobs after it may start. Its unfinished tasks are counted only when some
        // job waits for it (counting costs as much as the job is big).
        let chunk = 400
        for start in stride(from: 0, to: max(tasks.count, jobs.count), by: chunk) {
            let ids = inList(tasks.dropFirst(start).prefix(chunk).map(\.task.rawValue))
            let jobIDs = inList(Array(jobs.dropFirst(start).prefix(chunk)))
            let rows = try SQLRow.fetchAll(db, sql: """
                SELECT t.id, t.job_id FROM task_deps d JOIN tasks t ON t.id = d.task_id
                WHERE d.depends_on IN (\(ids.marks)) AND t.state = 'blocked'
                UNION ALL
                SELECT 0, after_job FROM job_deps WHERE after_job IN (\(jobIDs.marks))
                """, arguments: ids.arguments + jobIDs.arguments)
            for row in rows {
                let id: Int64 = row[0]
                if id == 0 { waitedFor.insert(row[1]) } else { candidates.append((TaskID(rawValue: id), JobID(rawValue: row[1]))) }
            }
        }
        // PostgreSQL: two transactions that each finish one of a dependent's last prerequisites (two
        // masters, or two lanes of one) each look before the other commits, and each sees the other's
        // unfinished: neither would unblock it, and it would stay blocked for good. Each locks the
        // dependents before it looks (the jobs that run after, by an advisory lock of the transaction,
        // so that a cancel or patch of that job, which locks its tasks and then its row, is not met in
        // the opposite order; then the blocked tasks' rows; each in id order): the second to lock
        // looks after the first committed, with a statement that sees that commit. The cost: the
        // exchanges finishing a job that another waits for (or a task's prerequisites) take turns
        // from that look to their commits. SQLite has one writer: nothing to lock.
        let serialize = !db.lockRows.isEmpty
        if serialize, !waitedFor.isEmpty {
            try lockInIDOrder(db, waitedFor) { marks in """
                SELECT \(PostgresSchema.lockDependents(ofJob: "d.job_id"))
                FROM (SELECT DISTINCT job_id FROM job_deps WHERE after_job IN (\(marks)) ORDER BY job_id) d
                """ }
        }
        for job in jobs where waitedFor.contains(job) {
            let unfinished = try Bool.fetchOne(db, sql: """
                SELECT EXISTS (SELECT 1 FROM tasks WHERE job_id = ? AND state IN (\(Self.unfinished)))
                """, arguments: [job]) ?? true
            guard !unfinished else { continue }
            candidates += try SQLRow.fetchAll(db, sql: """
                SELECT t.id, t.job_id FROM job_deps jd JOIN tasks t ON t.job_id = jd.job_id
                WHERE jd.after_job = ? AND t.state = 'blocked'
                """, arguments: [job]).map { (TaskID(rawValue: $0["id"]), JobID(rawValue: $0["job_id"])) }
        }
        if serialize, !candidates.isEmpty {
            try lockInIDOrder(db, candidates.map(\.0.rawValue)) { "SELECT id FROM tasks WHERE id IN (\($0)) ORDER BY id FOR NO KEY UPDATE" }
        }
        var looked: Set<TaskID> = []
        for (dependent, dependentJob) in candidates where looked.insert(dependent).inserted {
            guard try isReady(db, task: dependent, job: dependentJob) else { continue }
            let to = try TaskState.blocked.applying(.unblock)
            let moved = try db.execute(sql: "UPDATE tasks SET state = ? WHERE id = ? AND state = 'blocked'",
                                       arguments: [to.rawValue, dependent.rawValue])
            if moved == 1 {
                try insertEvent(db, task: dependent, .unblock, from: .blocked, to: to, agent: nil, epoch: LeaseEpoch(0),
                                reason: "dependencies succeeded", now: now)
            }
        }
    }

    /// Cancels, transitively, every blocked task that waits for `task` (directly, or through the job
    /// it belongs to). Iterative: a long chain must not exhaust the stack.
    static func cancelDependents(_ db: any SQLDatabase, of task: TaskID, reason: String, now: Date) throws {
        var work = [task]
        while let next = work.popLast() {
            guard let job = try Int64.fetchOne(db, sql: "SELECT job_id FROM tasks WHERE id = ?", arguments: [next.rawValue])
            else { continue }
            let dependents = try Int64.fetchAll(db, sql: """
                SELECT t.id FROM task_deps d JOIN tasks t ON t.id = d.task_id WHERE d.depends_on = ? AND t.state = 'blocked'
                UNION
                SELECT t.id FROM job_deps jd JOIN tasks t ON t.job_id = jd.job_id WHERE jd.after_job = ? AND t.state = 'blocked'
                """, arguments: [next.rawValue, job])
            for id in dependents.map(TaskID.init(rawValue:)) {
                let to = try TaskState.blocked.applying(.cancel)
                let moved = try db.execute(sql: """
                    UPDATE tasks SET state = ?, reason = ?, finished_at = ? WHERE id = ? AND state = 'blocked'
                    """, arguments: [to.rawValue, reason, now.timeIntervalSince1970, id.rawValue])
                guard moved == 1 else { continue }
                try insertEvent(db, task: id, .cancel, from: .blocked, to: to, agent: nil, epoch: LeaseEpoch(0),
                                reason: reason, now: now)
                work.append(id)
            }
        }
    }

    /// One more failed run of `job` on `agent`.
    static func countFailure(_ db: any SQLDatabase, job: JobID, agent: AgentID) throws {
        try db.execute(sql: """
            INSERT INTO job_blocklist (job_id, agent_id, failures) VALUES (?, ?, 1)
            ON CONFLICT (job_id, agent_id) DO UPDATE SET failures = job_blocklist.failures + 1
            """, arguments: [job.rawValue, agent.rawValue])
    }

    public func blocklist(job: JobID, threshold: Int) async throws -> [BlocklistEntry] {
        try await engine.read { db in
            try SQLRow.fetchAll(db, sql: """
                SELECT agent_id, failures FROM job_blocklist WHERE job_id = ? AND failures >= ? ORDER BY agent_id
                """, arguments: [job.rawValue, threshold]).map {
                BlocklistEntry(agent: AgentID(rawValue: $0["agent_id"]), failures: $0["failures"])
            }
        }
    }

    public func clearBlocklist(job: JobID) async throws {
        try await engine.write { db in
            _ = try Self.jobView(db, job)
            try db.execute(sql: "DELETE FROM job_blocklist WHERE job_id = ?", arguments: [job.rawValue])
        }
    }
}
