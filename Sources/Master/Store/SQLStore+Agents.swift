import Foundation
import PaddockProtocol

extension SQLStore {
    public func enroll(_ request: EnrollRequest, credential: String, joinToken: TokenID?, now: Date) async throws -> AgentID {
        let credentialHash = SecretHash.hex(credential)
        let proofHash = request.credential.map(SecretHash.hex)
        return try await engine.write { db in
            if let joinToken { try Self.useJoinToken(db, joinToken, now: now) }
            if try SQLRow.fetchOne(db, sql: "SELECT name FROM deleted_agents WHERE name = ?", arguments: [request.name]) != nil {
                throw PaddockError.agentDeleted(request.name)
            }
            let r = request.resources
            if let row = try SQLRow.fetchOne(db, sql: "SELECT id, credential_hash, reset_at FROM agents WHERE name = ?\(db.lockRows)",
                                             arguments: [request.name]) {
                let id = AgentID(rawValue: row["id"])
                // Only the agent itself (its current credential) or an admin's reset may take a name over.
                let proven = proofHash.map { SecretHash.equal($0, row["credential_hash"]) } ?? false
                guard proven || (row["reset_at"] as Double?) != nil else { throw PaddockError.agentNameTaken(request.name, agent: id) }
                try db.execute(sql: """
                    UPDATE agents SET credential_hash = ?, reset_at = NULL, tags = ?, cpu_millis = ?, ram = ?, disk = ?, gpus = ?,
                        version = ?, last_seen = ?, state = 'online'
                    WHERE id = ?
                    """, arguments: [credentialHash, try Self.json(request.tags), r.milliCPUs, r.ram, r.disk, r.gpus,
                                     request.version, now.timeIntervalSince1970, id.rawValue])
                // A re-enrolling agent is a new process: whatever the old one held is gone.
                try Self.requeueHeld(db, agent: id, except: [], reason: "agent re-enrolled", now: now)
                return id
            }
            guard let id = try Int64.fetchOne(db, sql: """
                INSERT INTO agents (name, credential_hash, state, tags, cpu_millis, ram, disk, gpus, version, enrolled_at, last_seen)
                VALUES (?, ?, 'online', ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id
                """, arguments: [request.name, credentialHash, try Self.json(request.tags), r.milliCPUs, r.ram, r.disk, r.gpus,
                                 request.version, now.timeIntervalSince1970, now.timeIntervalSince1970]) else {
                throw PaddockError.conflict("agent \(request.name) was not stored")
            }
            return AgentID(rawValue: id)
        }
    }

    public func authenticate(credential: String) async throws -> AgentIdentity? {
        let hash = SecretHash.hex(credential)
        return try await engine.read { db in
            guard let row = try SQLRow.fetchOne(db, sql: "SELECT * FROM agents WHERE credential_hash = ?",
                                                arguments: [hash]),
                  SecretHash.equal(row["credential_hash"], hash) else { return nil }
            return AgentIdentity(id: AgentID(rawValue: row["id"]), name: row["name"], state: Self.agentState(row))
        }
    }

    public func resetAgent(name: String, now: Date) async throws -> AgentResetResult {
        // What replaces the credential is no SHA-256 in hex: no secret can match it.
        let unusable = "reset:" + SecretHash.newSecret(prefix: "")
        return try await engine.write { db in
            let wasDeleted = try db.execute(sql: "DELETE FROM deleted_agents WHERE name = ?", arguments: [name]) > 0
            if let id = try Int64.fetchOne(db, sql: "SELECT id FROM agents WHERE name = ?\(db.lockRows)", arguments: [name]) {
                try db.execute(sql: "UPDATE agents SET credential_hash = ?, reset_at = ? WHERE id = ?",
                               arguments: [unusable, now.timeIntervalSince1970, id])
                return AgentResetResult(name: name, outcome: .reset, agent: AgentID(rawValue: id))
            }
            guard wasDeleted else { throw PaddockError.notFound("an agent named \(name.prefix(80))") }
            return AgentResetResult(name: name, outcome: .allowed)
        }
    }

    public func agent(_ id: AgentID) async throws -> AgentView {
        try await engine.read { db in
            guard let row = try SQLRow.fetchOne(db, sql: "SELECT * FROM agents WHERE id = ?", arguments: [id.rawValue]) else {
                throw PaddockError.notFound("agent \(id)")
            }
            return try Self.agentView(db, row)
        }
    }

    public func agents() async throws -> [AgentView] {
        try await engine.read { db in
            try SQLRow.fetchAll(db, sql: "SELECT * FROM agents ORDER BY id").map { try Self.agentView(db, $0) }
        }
    }

    /// Every submission asks (its placement warnings): one read of the agents' rows, where building
    /// their views cost a few reads each (2 000 agents: about 15 ms a submission).
    public func agentCapacities() async throws -> [AgentCapacity] {
        try await engine.read { db in
            try SQLRow.fetchAll(db, sql: """
                SELECT id, name, cpu_millis, ram, disk, gpus, tags FROM agents WHERE disabled = 0 ORDER BY id
                """).map { row in
                let tags: String = row["tags"]
                return AgentCapacity(id: AgentID(rawValue: row["id"]), name: row["name"],
                                     total: ResourceVector(milliCPUs: row["cpu_millis"], ram: row["ram"], disk: row["disk"],
                                                           gpus: row["gpus"]),
                                     tags: tags == "[]" ? [] : Set(try Self.decode([String].self, tags)))
            }
        }
    }

    public func heartbeat(agent: AgentID, beat: HeartbeatRequest, leaseUntil: Date, now: Date) async throws
        -> (AgentState, lost: [HeldLease], released: Int) {
        try await engine.write(lockingAgent: agent.rawValue) { db in
            // Only a heartbeat brings an offline agent back; a leaving one stays offline (a long-poll
            // claim it abandoned must not hand it work after it left).
            let seen = try db.execute(sql: """
                UPDATE agents SET last_seen = ?, state = CASE WHEN ? = 1 THEN 'offline' ELSE 'online' END
                WHERE id = ?
                """, arguments: [now.timeIntervalSince1970, beat.leaving, agent.rawValue])
            guard seen == 1 else { throw PaddockError.notFound("agent \(agent)") }
            if beat.authoritative {
                try Self.requeueHeld(db, agent: agent, except: Set(beat.held.map(\.task)),
                                     reason: beat.leaving ? "agent left" : "agent restarted", now: now)
            }
            if let metrics = beat.metrics { try Self.store(db, metrics: metrics, agent: agent, now: now) }
            for report in beat.usage {
                try Self.store(db, usage: report.usage, task: report.task, agent: agent, epoch: report.epoch)
            }
            // A lease the agent does not hold that was granted by an exchange it says was answered
            // (`beat.answered`), or handed out long ago, never reached it (the answer that carried it
            // was lost with a connection or a master): back to the queue at once, no attempt used,
            // rather than after its whole timeout. Other leases younger than `unheldGrace` may
            // still be on their way to the agent.
            let grantedBefore = leaseUntil.addingTimeInterval(-Self.unheldGrace)
            var released = 0
            if !beat.authoritative {
                let held = Set(beat.held.map(\.task))
                for row in try SQLRow.fetchAll(db, sql: """
                    SELECT * FROM tasks WHERE agent_id = ? AND \(Self.held())
                      AND (lease_expires_at < ? OR (grant_incarnation = ? AND grant_sequence <= ?))
                    ORDER BY id\(db.lockRows)
                    """, arguments: [agent.rawValue, grantedBefore.timeIntervalSince1970,
                                     beat.answered?.incarnation ?? -1, beat.answered?.sequence ?? -1]) {
                    let task = try Self.taskView(row)
                    guard !held.contains(task.id) else { continue }
                    if try Self.releaseLease(db, task, reason: "its lease never reached the agent", now: now) { released += 1 }
                }
            }
            var lost: [HeldLease] = []
            for lease in beat.held {
                let renewed = try db.execute(sql: """
                    UPDATE tasks SET lease_expires_at = ?
                    WHERE id = ? AND agent_id = ? AND epoch = ? AND \(Self.held())
                    """, arguments: [leaseUntil.timeIntervalSince1970, lease.task.rawValue, agent.rawValue, lease.epoch.rawValue])
                if renewed == 0 { lost.append(lease) }
            }
            let row = try SQLRow.fetchOne(db, sql: "SELECT * FROM agents WHERE id = ?", arguments: [agent.rawValue])
            return (row.map(Self.agentState) ?? .offline, lost, released)
        }
    }

    /// Gives back to the queue every task `agent` holds, except `except`.
    static func requeueHeld(_ db: any SQLDatabase, agent: AgentID, except: Set<TaskID>, reason: String, now: Date) throws {
        let rows = try SQLRow.fetchAll(db, sql: """
            SELECT * FROM tasks WHERE agent_id = ? AND \(Self.held()) ORDER BY id\(db.lockRows)
            """,
                                    arguments: [agent.rawValue])
        for row in rows {
            let task = try taskView(row)
            guard !except.contains(task.id) else { continue }
            _ = try loseLease(db, task, reason: reason, now: now)
        }
    }

    /// How old an unheld lease must be before a heartbeat gives it back (see `heartbeat`).
    static let unheldGrace: TimeInterval = 10

    /// Gives a lease back to the queue as a release: the agent never ran it, so no attempt is used.
    @discardableResult
    static func releaseLease(_ db: any SQLDatabase, _ task: TaskView, reason: String, now: Date) throws -> Bool {
        let to = try legal(task, .release)
        let moved = try db.execute(sql: """
            UPDATE tasks SET state = ?, lease_expires_at = NULL, reason = ?, attempt = attempt - ?
            WHERE id = ? AND epoch = ? AND state = ?
            """, arguments: [to.rawValue, reason, task.state == .running ? 1 : 0, task.id.rawValue, task.epoch.rawValue,
                             task.state.rawValue])
        guard moved == 1 else { return false }
        try record(db, task: task.id, .release, from: task.state, to: to, agent: task.agent, epoch: task.epoch,
                   reason: reason, now: now)
        return true
    }

    /// A lease that is gone (expired, or its agent restarted or left): an assigned task goes back
    /// to the queue; a running one too, its attempt used, or fails for good with none left.
    /// Nil when the lease had already moved on (another master got there first).
    static func loseLease(_ db: any SQLDatabase, _ task: TaskView, reason: String, now: Date) throws -> TaskState? {
        let transition: TaskTransition = task.state == .running && task.attempt >= task.maxAttempts ? .fail : .expireLease
        let to = try legal(task, transition)
        let moved = try db.execute(sql: """
            UPDATE tasks SET state = ?, lease_expires_at = NULL, reason = ?, finished_at = ?
            WHERE id = ? AND epoch = ? AND state = ?
            """, arguments: [to.rawValue, reason, to.isTerminal ? now.timeIntervalSince1970 : nil,
                             task.id.rawValue, task.epoch.rawValue, task.state.rawValue])
        guard moved == 1 else { return nil }
        try record(db, task: task.id, transition, from: task.state, to: to, agent: task.agent, epoch: task.epoch,
                   reason: reason, now: now)
        return to
    }

    /// What users see: an admin's decision (disabled, draining) over whether the agent is alive.
    static func agentState(_ row: SQLRow) -> AgentState {
        if row["disabled"] as Bool { return .disabled }
        if (row["state"] as String) == "offline" { return .offline }
        return (row["draining"] as Bool) ? .draining : .online
    }

    static func agentView(_ db: any SQLDatabase, _ row: SQLRow) throws -> AgentView {
        let id = AgentID(rawValue: row["id"])
        let total = ResourceVector(milliCPUs: row["cpu_millis"], ram: row["ram"], disk: row["disk"], gpus: row["gpus"])
        let held = try SQLRow.fetchAll(db, sql: """
            SELECT id, cpu_millis, ram, disk, gpus FROM tasks WHERE agent_id = ? AND \(Self.held()) ORDER BY id
            """, arguments: [id.rawValue])
        let used = held.reduce(ResourceVector.zero) { sum, row in
            sum + ResourceVector(milliCPUs: row["cpu_millis"], ram: row["ram"], disk: row["disk"], gpus: row["gpus"])
        }
        var view = AgentView(
            id: id, name: row["name"], state: agentState(row),
            tags: try decode([String].self, row["tags"]), resources: AgentResources(total: total, free: total - used),
            runningTasks: held.map { TaskID(rawValue: $0["id"]) }, version: row["version"],
            enrolledAt: Date(timeIntervalSince1970: row["enrolled_at"]),
            lastSeen: Date(timeIntervalSince1970: row["last_seen"]))
        view.metrics = try (row["metrics"] as String?).map { try decode(HostMetrics.self, $0) }
        view.exceptions = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM agent_exceptions WHERE agent_id = ?",
                                           arguments: [id.rawValue]) ?? 0
        return view
    }
}
