import Foundation
import Logging
import PaddockProtocol
import Synchronization

/// The farm's state in a relational database: the store's logic written once,
/// as SQL over one transaction per method, on SQLite (the embedded default) or
/// PostgreSQL (several masters on one database). See `SQLEngine`, `SQLDialect`.
public final class SQLStore: Store {
    public var backend: String { engine.dialect.engine.rawValue }
    public let engine: any SQLEngine
    public let clock = LeaseClock()
    /// Tasks by state, kept as writes commit (`TaskTally`).
    public let tally = TaskTally()

    public init(engine: any SQLEngine) {
        self.engine = TallyingEngine(inner: engine, tally: tally)
    }

    /// The embedded default: one SQLite file.
    public static func sqlite(path: String) throws -> SQLStore {
        SQLStore(engine: try SQLiteEngine(path: path))
    }

    /// PostgreSQL, shared by several masters.
    public static func postgres(_ location: PostgresLocation, logger: Logger) async throws -> SQLStore {
        SQLStore(engine: try await PostgresEngine(location, logger: logger))
    }

    public var relay: (any WakeRelay)? { engine.relay }

    public func ping() async throws { try await engine.ping() }

    public func close() async { await engine.close() }

    // MARK: jobs

    /// With an idempotency key: the first submission under it is stored with its body's hash; the same
    /// key again with the same body answers the job stored then (a client retrying a submission whose
    /// answer it lost makes no second job), with another body 422. Keys are kept 24 hours, and are
    /// each owner's own: one token's key neither finds nor blocks another's job.
    public func submit(_ job: ValidatedJob, owner: String, now: Date,
                       idempotency: SubmissionKey?, handoff: HeldClaims?) async throws -> SubmitOutcome {
        // Stored under the owner: a key is visible ASCII, so the newline cannot be forged into it.
        let storedKey = idempotency.map { owner + "\n" + $0.key }
        // The held exchanges this submission takes, once: a transaction run again (a collision on
        // PostgreSQL) hands off to the same ones. Each hears after the commit, with nothing if the
        // submission failed or its claim found nothing.
        let takers = Mutex<[HeldClaims.Entry]?>(nil)
        let written: SubmitOutcome
        do {
            written = try await engine.write { db in
                try Self.submit(db, job, owner: owner, storedKey: storedKey, idempotency: idempotency, now: now,
                                handoff: handoff.map { claims in
                                    { work in takers.withLock { taken in
                                        if taken == nil { taken = claims.take(for: work) }
                                        return taken ?? []
                                    } }
                                })
            }
        } catch {
            for entry in takers.withLock({ $0 }) ?? [] { entry.handoff.deliver([]) }
            throw error
        }
        let handed = Dictionary(written.handedOff.map { (ObjectIdentifier($0.0), $0.1) }, uniquingKeysWith: { first, _ in first })
        for entry in takers.withLock({ $0 }) ?? [] { entry.handoff.deliver(handed[ObjectIdentifier(entry.handoff)] ?? []) }
        if !written.replayed { engine.inserted(tasks: job.submission.tasks.count) }
        return written
    }

    /// The submission's transaction: a replay's job found, or the job inserted and its claimable
    /// tasks handed to the held exchanges `takers` picks for them.
    private static func submit(_ db: any SQLDatabase, _ job: ValidatedJob, owner: String, storedKey: String?,
                               idempotency: SubmissionKey?, now: Date,
                               handoff takers: ((NewWork) -> [HeldClaims.Entry])?) throws -> SubmitOutcome {
        if let idempotency {
            try db.execute(sql: "DELETE FROM submissions WHERE created_at < ?",
                           arguments: [now.timeIntervalSince1970 - SubmissionKey.lifetime])
            if let row = try SQLRow.fetchOne(db, sql: "SELECT body_hash, job_id FROM submissions WHERE key = ?\(db.lockRows)",
                                             arguments: [storedKey]) {
                guard (row["body_hash"] as String) == idempotency.bodyHash else {
                    throw PaddockError.idempotencyKeyReused(idempotency.key)
                }
                let id = JobID(rawValue: row["job_id"])
                var view = try Self.jobView(db, id)
                let ids = try Int64.fetchAll(db, sql: "SELECT id FROM tasks WHERE job_id = ? ORDER BY id LIMIT 1001",
                                             arguments: [id.rawValue])
                if ids.count <= 1000 { view.taskIDs = ids.map(TaskID.init(rawValue:)) }
                return SubmitOutcome(job: view, replayed: true)
            }
        }
        let (view, readied, queued) = try Self.insertJob(db, job, owner: owner, now: now)
        if let idempotency {
            // Two masters storing one key at once: the second insert collides and its transaction runs
            // again, finding the first one's job above.
            try db.execute(sql: "INSERT INTO submissions (key, body_hash, job_id, created_at) VALUES (?, ?, ?, ?)",
                           arguments: [storedKey, idempotency.bodyHash, view.id.rawValue, now.timeIntervalSince1970])
        }
        var outcome = SubmitOutcome(job: view, replayed: false, readied: readied, queued: queued)
        if let takers {
            outcome.handedOff = Self.handOff(db, takers(readied), now: now)
            // Only the new job's tasks among them: a claim may have leased older queued work instead.
            outcome.readied.remove(taken: outcome.handedOff.reduce(0) { $0 + $1.1.filter { $0.job == view.id }.count })
        }
        return outcome
    }

    /// Runs each held exchange's claim in the submission's transaction, as its own round would have
    /// (the agent's row locked and its credential checked first; `startAtOnce`: what fits its free
    /// room runs from this commit), but stealing nothing. A claim that fails (its agent deleted or
    /// its credential reset meanwhile) changes nothing and hands over nothing: that exchange then
    /// claims itself, and hears why.
    static func handOff(_ db: any SQLDatabase, _ entries: [HeldClaims.Entry], now: Date) -> [(Handoff, [TaskLease])] {
        entries.map { entry -> (Handoff, [TaskLease]) in
            var order = entry.order
            order.now = now
            order.leaseUntil = now.addingTimeInterval(entry.leaseTimeout)
            order.startAtOnce = true
            order.maySteal = false
            let leases: [TaskLease]
            do {
                leases = try db.savepoint { () throws -> [TaskLease] in
                    try Self.lockAgent(db, order.agent, credential: entry.credential)
                    return try Self.claim(db, order).leases
                }
            } catch {
                leases = []
            }
            return (entry.handoff, leases)
        }
    }

    /// Inserts the job and its tasks; answers the job, its tasks that are claimable at once, and
    /// those tasks' requirements with how many need each (as `queuedRequirements` would read them).
    static func insertJob(_ db: any SQLDatabase, _ validated: ValidatedJob, owner: String,
                          now: Date) throws -> (JobView, NewWork, [(TaskRequirements, Int)]) {
        let job = validated.submission, graph = validated.graph
        // A job that runs after others waits until they all succeed; one that already failed is refused.
        var afterReady = true
        for (index, after) in Set(job.after).sorted().enumerated() {
            // A finish of that job's last task must not look for the jobs after it before this one commits.
            try Self.holdUnfinished(db, ofJob: after)
            let view: JobView
            do { view = try Self.jobView(db, after) } catch {
                throw PaddockError.invalid("job \(after) does not exist", field: "after[\(index)]")
            }
            switch view.state {
            case .succeeded: break
            case .failed, .cancelled:
                throw PaddockError.conflict("job \(after) is \(view.state.rawValue): a job after it could never run")
            default: afterReady = false
            }
        }
        guard let jobRow = try SQLRow.fetchOne(db, sql: """
            INSERT INTO jobs (name, owner, priority, labels, created_at, progress_regex) VALUES (?, ?, ?, ?, ?, ?)
            RETURNING id
            """, arguments: [job.name, owner, job.priority, try Self.json(job.labels), now.timeIntervalSince1970,
                             job.progressRegex]) else { throw PaddockError.conflict("the job was not stored") }
        let jobID = JobID(rawValue: jobRow["id"])
        for after in Set(job.after) {
            try db.execute(sql: "INSERT INTO job_deps (job_id, after_job) VALUES (?, ?)",
                           arguments: [jobID.rawValue, after.rawValue])
        }
        // Ids are taken first so that dependencies can name them, then rows go in many per statement.
        let ids = try db.allocateIDs("tasks", count: job.tasks.count)
        let columns = """
            INSERT INTO tasks (id, job_id, name, command, env, cwd, cpu_millis, ram, disk, gpus, tags, priority,
                               timeout, max_attempts, state, created_at, frame_start, frame_end, parameters) VALUES
            """
        let rowPlaceholders = "(" + Array(repeating: "?", count: 19).joined(separator: ", ") + ")"
        var readied = NewWork()
        // Consecutive tasks mostly share their requirements (a frame range): counted in runs, so that
        // a 100 000-task job hashes a few shapes, not one per task.
        var run: (requirements: TaskRequirements, count: Int)?
        var queued: [TaskRequirements: Int] = [:]
        var batch: [any SQLBindable] = []
        var batchRows = 0
        func flush() throws {
            guard batchRows > 0 else { return }
            try db.execute(sql: columns + Array(repeating: rowPlaceholders, count: batchRows).joined(separator: ", "),
                           arguments: batch)
            batch.removeAll(keepingCapacity: true)
            batchRows = 0
        }
        for (index, spec) in job.tasks.enumerated() {
            let req = job.effectiveRequirements(of: spec)
            let ready = afterReady && graph.prerequisites[index].isEmpty
            if ready {
                if run?.requirements == req {
                    run?.count += 1
                } else {
                    if let run {
                        readied.add(run.requirements, job: jobID, times: run.count)
                        queued[run.requirements, default: 0] += run.count
                    }
                    run = (req, 1)
                }
            }
            batch += [
                ids[index], jobID.rawValue, spec.name, try Self.json(spec.command), try Self.json(spec.env), spec.cwd,
                req.resources.milliCPUs, req.resources.ram, req.resources.disk, req.resources.gpus,
                try Self.json(req.tags), spec.priority ?? job.priority, spec.timeout ?? job.timeout,
                spec.maxAttempts ?? job.maxAttempts ?? JobSubmission.defaultMaxAttempts,
                (ready ? TaskState.queued : .blocked).rawValue, now.timeIntervalSince1970,
                spec.frames?.lowerBound, spec.frames?.upperBound,
                spec.parameters.isEmpty ? nil : try Self.json(spec.parameters),
            ] as [any SQLBindable]
            batchRows += 1
            if batchRows == 200 { try flush() }
        }
        try flush()
        if let run {
            readied.add(run.requirements, job: jobID, times: run.count)
            queued[run.requirements, default: 0] += run.count
        }
        // Inserted rows bypass the counting trigger (it watches updates): count them here.
        try db.execute(sql: "UPDATE jobs SET queued = ? WHERE id = ?", arguments: [readied.count, jobID.rawValue])
        db.tallyAdded(readied.count, .queued)
        db.tallyAdded(job.tasks.count - readied.count, .blocked)
        var edges: [any SQLBindable] = []
        func flushEdges() throws {
            guard !edges.isEmpty else { return }
            try db.execute(sql: "INSERT INTO task_deps (task_id, depends_on) VALUES "
                               + Array(repeating: "(?, ?)", count: edges.count / 2).joined(separator: ", "),
                           arguments: edges)
            edges.removeAll(keepingCapacity: true)
        }
        for (index, before) in graph.prerequisites.enumerated() {
            for b in before {
                edges += [ids[index], ids[b]] as [any SQLBindable]
                if edges.count >= 1000 { try flushEdges() }
            }
        }
        try flushEdges()
        // What `jobView` would read back, known here: three statements fewer in every submission.
        let counts = [TaskState.queued: readied.count, .blocked: job.tasks.count - readied.count].filter { $0.value > 0 }
        var view = JobView(
            id: jobID, name: job.name, owner: owner, priority: job.priority, labels: job.labels,
            state: JobState.derive(counts: counts, paused: false, cancelled: false), paused: false,
            createdAt: Date(timeIntervalSince1970: now.timeIntervalSince1970), counts: TaskCounts(counts), progress: 0,
            warnings: [], taskIDs: job.tasks.count <= 1000 ? ids.map(TaskID.init(rawValue:)) : nil)
        view.progressRegex = job.progressRegex
        return (view, readied, queued.sorted { Self.requirementOrder($0.key, $1.key) }.map { ($0.key, $0.value) })
    }

    /// The order of `queuedRequirements`' groups, and of a submission's (resources, then tags).
    static func requirementOrder(_ a: TaskRequirements, _ b: TaskRequirements) -> Bool {
        let left = (a.resources.milliCPUs, a.resources.ram, a.resources.disk, a.resources.gpus)
        let right = (b.resources.milliCPUs, b.resources.ram, b.resources.disk, b.resources.gpus)
        return left != right ? left < right : a.tags.joined(separator: ",") < b.tags.joined(separator: ",")
    }

    public func job(_ id: JobID) async throws -> JobView {
        try await engine.read { db in
            var view = try Self.jobView(db, id)
            let ids = try Int64.fetchAll(db, sql: "SELECT id FROM tasks WHERE job_id = ? ORDER BY id LIMIT 1001",
                                         arguments: [id.rawValue])
            if ids.count <= 1000 { view.taskIDs = ids.map(TaskID.init(rawValue:)) }
            return view
        }
    }

    public func jobs(_ filter: JobFilter, page: PageRequest) async throws -> Page<JobView> {
        try await engine.read { db in
            var sql = "SELECT id FROM jobs WHERE id > ? AND archived = ?"
            var arguments: [any SQLBindable] = [filter.archived]
            if let owner = filter.owner {
                sql += " AND owner = ?"
                arguments.append(owner)
            }
            var items: [JobView] = []
            var cursor = page.after
            // The state is derived from the tasks, so it is filtered here, a bounded number of batches at a time.
            for _ in 0..<20 {
                let ids = try Int64.fetchAll(db, sql: sql + " ORDER BY id LIMIT ?",
                                             arguments: [cursor] as [any SQLBindable] + arguments + [page.limit])
                for id in ids {
                    cursor = id
                    let view = try Self.jobView(db, JobID(rawValue: id))
                    if let state = filter.state, view.state != state { continue }
                    if let label = filter.label, view.labels[label.key] != label.value { continue }
                    items.append(view)
                    if items.count == page.limit { break }
                }
                if items.count == page.limit || ids.count < page.limit { break }
            }
            let more = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM jobs WHERE id > ?)", arguments: [cursor]) ?? false
            return Page(items: items, next: more && items.count == page.limit ? String(cursor) : nil)
        }
    }

    public func queuedRequirements(job: JobID) async throws -> [(TaskRequirements, Int)] {
        try await engine.read { db in
            try SQLRow.fetchAll(db, sql: """
                SELECT cpu_millis, ram, disk, gpus, tags, COUNT(*) AS n FROM tasks
                WHERE job_id = ? AND state = 'queued' GROUP BY cpu_millis, ram, disk, gpus, tags
                """, arguments: [job.rawValue]).map { row in
                (try Self.requirements(row), row["n"] as Int)
            }.sorted { Self.requirementOrder($0.0, $1.0) }
        }
    }

    static func jobView(_ db: any SQLDatabase, _ id: JobID) throws -> JobView {
        guard let row = try SQLRow.fetchOne(db, sql: "SELECT * FROM jobs WHERE id = ?", arguments: [id.rawValue]) else {
            throw PaddockError.notFound("job \(id)")
        }
        var counts: [TaskState: Int] = [:]
        for stateRow in try SQLRow.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM tasks WHERE job_id = ? GROUP BY state",
                                         arguments: [id.rawValue]) {
            if let state = TaskState(rawValue: stateRow["state"]) { counts[state] = stateRow["n"] }
        }
        let progress = try Double.fetchOne(db, sql: """
            SELECT AVG(CASE WHEN state = 'succeeded' THEN 1.0 ELSE progress END) FROM tasks WHERE job_id = ?
            """, arguments: [id.rawValue]) ?? 0
        let paused: Bool = row["paused"]
        let cancelled: Bool = row["cancelled"]
        var view = JobView(
            id: id, name: row["name"], owner: row["owner"], priority: row["priority"],
            labels: try decode([String: String].self, row["labels"]),
            state: JobState.derive(counts: counts, paused: paused, cancelled: cancelled),
            paused: paused, createdAt: Date(timeIntervalSince1970: row["created_at"]),
            counts: TaskCounts(counts), progress: progress, warnings: [], taskIDs: nil)
        view.progressRegex = row["progress_regex"]
        return view
    }

    // MARK: tasks

    public func task(_ id: TaskID, history: Bool) async throws -> TaskView {
        try await engine.read { db in
            guard let row = try SQLRow.fetchOne(db, sql: "SELECT tasks.*, \(Self.statusColumn) FROM tasks WHERE id = ?",
                                                arguments: [id.rawValue]) else {
                throw PaddockError.notFound("task \(id)")
            }
            var view = try Self.taskView(row)
            if history {
                view.history = try SQLRow.fetchAll(db, sql: "SELECT * FROM task_events WHERE task_id = ? ORDER BY id",
                                                arguments: [id.rawValue]).compactMap(Self.eventView)
            }
            return view
        }
    }

    public func tasks(_ filter: TaskFilter, page: PageRequest) async throws -> Page<TaskView> {
        try await engine.read { db in
            var sql = "SELECT tasks.*, \(Self.statusColumn) FROM tasks WHERE id > ?"
            var arguments: [any SQLBindable] = [page.after]
            if let job = filter.job { sql += " AND job_id = ?"; arguments.append(job.rawValue) }
            if let state = filter.state { sql += " AND state = ?"; arguments.append(state.rawValue) }
            if let agent = filter.agent { sql += " AND agent_id = ?"; arguments.append(agent.rawValue) }
            sql += " ORDER BY id LIMIT ?"
            arguments.append(page.limit + 1)
            let rows = try SQLRow.fetchAll(db, sql: sql, arguments: arguments)
            let items = try rows.prefix(page.limit).map(Self.taskView)
            let next = rows.count > page.limit ? items.last.map { String($0.id.rawValue) } : nil
            return Page(items: items, next: next)
        }
    }

    static func requirements(_ row: SQLRow) throws -> TaskRequirements {
        let tags: String = row["tags"]
        // Most tasks need no tag: a claim reads hundreds of candidates, so the JSON decoder is skipped for them.
        return TaskRequirements(
            resources: ResourceVector(milliCPUs: row["cpu_millis"], ram: row["ram"], disk: row["disk"], gpus: row["gpus"]),
            tags: tags == "[]" ? [] : try decode([String].self, tags))
    }

    static func taskView(_ row: SQLRow) throws -> TaskView {
        var view = TaskView(
            id: TaskID(rawValue: row["id"]), jobID: JobID(rawValue: row["job_id"]), name: row["name"],
            command: try decode([String].self, row["command"]), env: try decode([String: String].self, row["env"]),
            cwd: row["cwd"], requirements: try requirements(row), priority: row["priority"], timeout: row["timeout"],
            maxAttempts: row["max_attempts"], attempt: row["attempt"],
            state: TaskState(rawValue: row["state"]) ?? .queued,
            agent: (row["agent_id"] as Int64?).map(AgentID.init(rawValue:)), epoch: LeaseEpoch(row["epoch"]),
            progress: row["progress"], exitCode: row["exit_code"], reason: row["reason"],
            createdAt: Date(timeIntervalSince1970: row["created_at"]),
            startedAt: (row["started_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
            finishedAt: (row["finished_at"] as Double?).map(Date.init(timeIntervalSince1970:)))
        view.runs = row["runs"]
        view.status = Self.status(row)
        if let parameters = row["parameters"] as String? { view.parameters = try decode([String: String].self, parameters) }
        if let start = row["frame_start"] as Int?, let end = row["frame_end"] as Int?, start <= end {
            view.frames = "\(start)-\(end)"
        }
        if let cpu = row["cpu_seconds"] as Double? {
            let peak = row["peak_rss"] as Int64? ?? 0
            view.usage = TaskUsage(cpuSeconds: cpu, rss: peak, peakRSS: peak, processes: 0)
        }
        return view
    }

    static func eventView(_ row: SQLRow) -> TaskEventView? {
        guard let transition = TaskTransition(rawValue: row["transition"]),
              let from = TaskState(rawValue: row["from_state"]), let to = TaskState(rawValue: row["to_state"])
        else { return nil }
        return TaskEventView(at: Date(timeIntervalSince1970: row["at"]), transition: transition, from: from, to: to,
                             agent: (row["agent_id"] as Int64?).map(AgentID.init(rawValue:)),
                             epoch: LeaseEpoch(row["epoch"]), reason: row["reason"])
    }

    // MARK: JSON columns

    /// An `IN` list of `values`: its placeholders and their arguments (an empty list is `NULL`, which
    /// matches nothing). Padded to a power of two by repeating the last value (an `IN` list is a set:
    /// repeats change nothing), so that the SQLite connection's statement cache, which keeps each
    /// text it prepared, holds a few texts per statement and not one per length.
    static func inList(_ values: [Int64]) -> (marks: String, arguments: [Int64]) {
        guard let last = values.last else { return ("NULL", []) }
        var size = 1
        while size < values.count { size *= 2 }
        return (Array(repeating: "?", count: size).joined(separator: ", "),
                values + Array(repeating: last, count: size - values.count))
    }

    static func json<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }

    /// Lists and maps of strings (commands, env, tags), the bulk of a submission: see `JSONText`.
    /// (Declared throwing as the general one is, so that call sites read the same.)
    static func json(_ value: [String]) throws -> String { JSONText.array(value) }
    static func json(_ value: [String: String]) throws -> String { JSONText.object(value) }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }

    /// Lists and maps of strings as `JSONText` writes them, read without `JSONDecoder` (see `JSONText.strings`).
    static func decode(_ type: [String].Type, _ text: String) throws -> [String] {
        if let values = JSONText.strings(text) { return values }
        return try JSONDecoder().decode(type, from: Data(text.utf8))
    }

    static func decode(_ type: [String: String].Type, _ text: String) throws -> [String: String] {
        if let map = JSONText.stringMap(text) { return map }
        return try JSONDecoder().decode(type, from: Data(text.utf8))
    }
}
