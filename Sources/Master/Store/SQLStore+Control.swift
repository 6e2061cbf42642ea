import Foundation
import PaddockProtocol

/// Users' control of jobs and tasks. Stopping a task an agent holds also
/// enqueues the talkback command that tells the agent, in the same transaction.
extension SQLStore {
    public func patchJob(_ id: JobID, _ patch: JobPatch) async throws -> JobView {
        try await engine.write { db in
            let job = try Self.jobView(db, id)
            if let priority = patch.priority {
                // Tasks keep their offsets from the job's priority (a task given its own priority stays apart).
                try db.execute(sql: "UPDATE tasks SET priority = priority + ? WHERE job_id = ?",
                               arguments: [priority - job.priority, id.rawValue])
                try db.execute(sql: "UPDATE jobs SET priority = ? WHERE id = ?", arguments: [priority, id.rawValue])
            }
            if let labels = patch.labels {
                try db.execute(sql: "UPDATE jobs SET labels = ? WHERE id = ?", arguments: [try Self.json(labels), id.rawValue])
            }
            return try Self.jobView(db, id)
        }
    }

    public func cancelJob(_ id: JobID, archive: Bool, now: Date) async throws -> JobView {
        try await engine.write { db in
            let job = try Self.jobView(db, id)
            let open = try Self.taskRows(db, job: id, states: TaskTransition.cancel.rule.from)
            guard !open.isEmpty || archive else {
                throw PaddockError.conflict("job \(id) is \(job.state.rawValue): nothing left to cancel")
            }
            for task in open { try Self.cancel(db, task, reason: "job cancelled", now: now) }
            try db.execute(sql: "UPDATE jobs SET cancelled = 1, archived = CASE WHEN ? = 1 THEN 1 ELSE archived END WHERE id = ?",
                           arguments: [archive, id.rawValue])
            return try Self.jobView(db, id)
        }
    }

    public func pauseJob(_ id: JobID, kill: Bool, now: Date) async throws -> JobView {
        try await engine.write { db in
            let job = try Self.jobView(db, id)
            guard [.queued, .running, .paused].contains(job.state) else {
                throw PaddockError.conflict("job \(id) is \(job.state.rawValue): there is nothing to pause")
            }
            try db.execute(sql: "UPDATE jobs SET paused = 1 WHERE id = ?", arguments: [id.rawValue])
            if kill {
                // Stopped tasks go back to the queue without using an attempt, to run after resume.
                for task in try Self.taskRows(db, job: id, states: [.assigned, .running]) {
                    let to = try Self.legal(task, .release)
                    try db.execute(sql: """
                        UPDATE tasks SET state = ?, lease_expires_at = NULL, reason = 'job paused',
                            attempt = attempt - ? WHERE id = ? AND epoch = ? AND state = ?
                        """, arguments: [to.rawValue, task.state == .running ? 1 : 0, task.id.rawValue,
                                         task.epoch.rawValue, task.state.rawValue])
                    try Self.record(db, task: task.id, .release, from: task.state, to: to, agent: task.agent,
                                    epoch: task.epoch, reason: "job paused", now: now)
                    if let agent = task.agent {
                        _ = try Self.enqueue(db, agent: agent, kind: .drop, task: task.id, epoch: task.epoch, now: now)
                    }
                }
            }
            return try Self.jobView(db, id)
        }
    }

    public func resumeJob(_ id: JobID) async throws -> JobView {
        try await engine.write { db in
            let job = try Self.jobView(db, id)
            guard job.paused else {
                throw PaddockError.conflict("job \(id) is \(job.state.rawValue), not paused: there is nothing to resume")
            }
            try db.execute(sql: "UPDATE jobs SET paused = 0 WHERE id = ?", arguments: [id.rawValue])
            return try Self.jobView(db, id)
        }
    }

    public func retryJob(_ id: JobID, now: Date) async throws -> JobView {
        try await engine.write { db in
            let job = try Self.jobView(db, id)
            let finished = try Self.taskRows(db, job: id, states: TaskTransition.retry.rule.from)
            guard !finished.isEmpty else {
                throw PaddockError.conflict("job \(id) is \(job.state.rawValue): no failed or cancelled task to retry")
            }
            try Self.awaitPrerequisitesOfRetried(db, finished)
            for task in finished { try Self.retry(db, task, now: now) }
            try db.execute(sql: "UPDATE jobs SET cancelled = 0 WHERE id = ?", arguments: [id.rawValue])
            return try Self.jobView(db, id)
        }
    }

    public func cancelTask(_ id: TaskID, now: Date) async throws -> TaskView {
        try await engine.write { db in
            try Self.cancel(db, try Self.taskView(db, id), reason: "cancelled", now: now)
            return try Self.taskView(db, id)
        }
    }

    public func retryTask(_ id: TaskID, now: Date) async throws -> TaskView {
        try await engine.write { db in
            let task = try Self.taskView(db, id)
            try Self.awaitPrerequisitesOfRetried(db, [task])
            try Self.retry(db, task, now: now)
            return try Self.taskView(db, id)
        }
    }

    public func patchTasks(_ patch: TaskBulkPatch, now: Date) async throws -> Int {
        try await engine.write { db in
            // Check everything first: one unknown id or illegal change and nothing is written.
            var tasks: [TaskView] = []
            // Retried in id order: a dependency (always an older task) is queued before its dependents look.
            for id in Set(patch.ids).sorted() {
                let task = try Self.taskView(db, id)
                if let state = patch.state {
                    _ = try Self.legal(task, state == .cancelled ? .cancel : .retry)
                }
                tasks.append(task)
            }
            if patch.state == .queued { try Self.awaitPrerequisitesOfRetried(db, tasks) }
            for task in tasks {
                if let priority = patch.priority {
                    try db.execute(sql: "UPDATE tasks SET priority = ? WHERE id = ?", arguments: [priority, task.id.rawValue])
                }
                switch patch.state {
                case .cancelled?: try Self.cancel(db, task, reason: "cancelled", now: now)
                case .queued?: try Self.retry(db, task, now: now)
                case nil: break
                }
            }
            return tasks.count
        }
    }

    // MARK: helpers

    static func taskRows(_ db: any SQLDatabase, job: JobID, states: Set<TaskState>) throws -> [TaskView] {
        let list = states.map { "'\($0.rawValue)'" }.sorted().joined(separator: ",")
        return try SQLRow.fetchAll(db, sql: "SELECT * FROM tasks WHERE job_id = ? AND state IN (\(list)) ORDER BY id\(db.lockRows)",
                                arguments: [job.rawValue]).map(taskView)
    }

    /// Cancels one task; one an agent holds is also stopped there (a `cancel` command for its lease).
    static func cancel(_ db: any SQLDatabase, _ task: TaskView, reason: String, now: Date) throws {
        let to = try legal(task, .cancel)
        try db.execute(sql: """
            UPDATE tasks SET state = ?, lease_expires_at = NULL, reason = ?, finished_at = ?
            WHERE id = ? AND state = ? AND epoch = ?
            """, arguments: [to.rawValue, reason, now.timeIntervalSince1970, task.id.rawValue, task.state.rawValue,
                             task.epoch.rawValue])
        try record(db, task: task.id, .cancel, from: task.state, to: to, agent: task.agent, epoch: task.epoch,
                   reason: reason, now: now)
        if task.state.isLeased, let agent = task.agent {
            _ = try enqueue(db, agent: agent, kind: .cancel, task: task.id, epoch: task.epoch, now: now)
        }
    }

    /// A failed or cancelled task back to the queue with all its attempts again. The caller has taken
    /// `awaitPrerequisitesOfRetried`'s locks, for every task it retries, before the first.
    static func retry(_ db: any SQLDatabase, _ task: TaskView, now: Date) throws {
        let to = try legal(task, .retry)
        try db.execute(sql: """
            UPDATE tasks SET state = ?, attempt = 0, exit_code = NULL, reason = NULL, finished_at = NULL, progress = 0
            WHERE id = ? AND state = ?
            """, arguments: [to.rawValue, task.id.rawValue, task.state.rawValue])
        try record(db, task: task.id, .retry, from: task.state, to: to, agent: nil, epoch: task.epoch,
                   reason: "retried by a user", now: now)
        // Its dependencies may have been retried too: it waits for them again.
        if !(try isReady(db, task: task.id, job: task.jobID)) {
            let blocked = try to.applying(.block)
            try db.execute(sql: "UPDATE tasks SET state = ? WHERE id = ? AND state = ?",
                           arguments: [blocked.rawValue, task.id.rawValue, to.rawValue])
            try insertEvent(db, task: task.id, .block, from: to, to: blocked, agent: nil, epoch: task.epoch,
                            reason: "waits for its dependencies", now: now)
        }
    }
}
