import Foundation
import PaddockProtocol

/// Agents: what admins change about them, and the durable commands that tell them.
extension SQLStore {
    public func patchAgent(_ id: AgentID, _ patch: AgentPatch, now: Date) async throws -> AgentView {
        try await engine.write { db in
            guard try SQLRow.fetchOne(db, sql: "SELECT id FROM agents WHERE id = ?", arguments: [id.rawValue]) != nil else {
                throw PaddockError.notFound("agent \(id)")
            }
            if let drain = patch.drain {
                try db.execute(sql: "UPDATE agents SET draining = ? WHERE id = ?", arguments: [drain, id.rawValue])
                _ = try Self.enqueue(db, agent: id, kind: drain ? .drain : .undrain, now: now)
            }
            if let disabled = patch.disabled {
                try db.execute(sql: "UPDATE agents SET disabled = ? WHERE id = ?", arguments: [disabled, id.rawValue])
            }
            if patch.tags != nil || patch.resources != nil {
                try Self.update(db, agent: id, tags: patch.tags, resources: patch.resources)
                _ = try Self.enqueue(db, agent: id, kind: .update, tags: patch.tags, resources: patch.resources, now: now)
            }
            guard let row = try SQLRow.fetchOne(db, sql: "SELECT * FROM agents WHERE id = ?", arguments: [id.rawValue]) else {
                throw PaddockError.notFound("agent \(id)")
            }
            return try Self.agentView(db, row)
        }
    }

    public func forgetAgent(_ id: AgentID, now: Date) async throws {
        try await engine.write { db in
            guard let row = try SQLRow.fetchOne(db, sql: "SELECT id, name FROM agents WHERE id = ?", arguments: [id.rawValue]) else {
                throw PaddockError.notFound("agent \(id)")
            }
            try Self.requeueHeld(db, agent: id, except: [], reason: "agent forgotten", now: now)
            try db.execute(sql: "DELETE FROM agent_commands WHERE agent_id = ?", arguments: [id.rawValue])
            try db.execute(sql: "DELETE FROM agents WHERE id = ?", arguments: [id.rawValue])
            // A deleted agent does not come back by itself: its name stays out until an admin resets it.
            let name: String = row["name"]
            try db.execute(sql: "DELETE FROM deleted_agents WHERE name = ?", arguments: [name])
            try db.execute(sql: "INSERT INTO deleted_agents (name, deleted_at) VALUES (?, ?)",
                           arguments: [name, now.timeIntervalSince1970])
        }
    }

    public func sendCommand(to agent: AgentID, _ request: CommandRequest, now: Date) async throws -> Int64 {
        try await engine.write { db in
            guard try SQLRow.fetchOne(db, sql: "SELECT id FROM agents WHERE id = ?", arguments: [agent.rawValue]) != nil else {
                throw PaddockError.notFound("agent \(agent)")
            }
            var epoch: LeaseEpoch?
            if let task = request.task {
                let view = try Self.taskView(db, task)
                guard view.agent == agent, view.state.isLeased else {
                    throw PaddockError.conflict("agent \(agent) does not hold task \(task)")
                }
                epoch = view.epoch
            }
            // The master's own record follows what the agent is told.
            switch request.kind {
            case .drain, .undrain:
                try db.execute(sql: "UPDATE agents SET draining = ? WHERE id = ?",
                               arguments: [request.kind == .drain, agent.rawValue])
            case .update:
                try Self.update(db, agent: agent, tags: request.tags, resources: request.resources)
            case .cancel, .drop, .giveBack, .shutdown, .ping:
                break
            }
            return try Self.enqueue(db, agent: agent, kind: request.kind, task: request.task, epoch: epoch,
                                    tags: request.tags, resources: request.resources, now: now,
                                    ttl: request.ttl ?? CommandRequest.defaultTTL)
        }
    }

    public func commands(for agent: AgentID, after: Int64, now: Date) async throws -> [AgentCommand] {
        try await engine.read { db in try Self.commands(db, for: agent, after: after, now: now) }
    }

    /// Up to 100 of the agent's unexpired commands after `after`, in order.
    static func commands(_ db: any SQLDatabase, for agent: AgentID, after: Int64, now: Date) throws -> [AgentCommand] {
        try SQLRow.fetchAll(db, sql: """
            SELECT * FROM agent_commands WHERE agent_id = ? AND seq > ? AND expires_at > ? ORDER BY seq LIMIT 100
            """, arguments: [agent.rawValue, after, now.timeIntervalSince1970]).compactMap { row in
            guard let kind = CommandKind(rawValue: row["kind"]) else { return nil }
            return AgentCommand(
                seq: row["seq"], kind: kind, task: (row["task_id"] as Int64?).map(TaskID.init(rawValue:)),
                epoch: (row["epoch"] as Int64?).map(LeaseEpoch.init),
                tags: try (row["tags"] as String?).map { try Self.decode([String].self, $0) },
                resources: try (row["resources"] as String?).map { try Self.decode(ResourceVector.self, $0) },
                createdAt: Date(timeIntervalSince1970: row["created_at"]),
                expiresAt: Date(timeIntervalSince1970: row["expires_at"]))
        }
    }

    /// Appends a command to the agent's queue; returns its sequence number.
    static func enqueue(_ db: any SQLDatabase, agent: AgentID, kind: CommandKind, task: TaskID? = nil, epoch: LeaseEpoch? = nil,
                        tags: [String]? = nil, resources: ResourceVector? = nil, now: Date,
                        ttl: Double = CommandRequest.defaultTTL) throws -> Int64 {
        // The agent's row lock serialises masters numbering its commands.
        _ = try Int64.fetchOne(db, sql: "SELECT id FROM agents WHERE id = ?\(db.lockRows)", arguments: [agent.rawValue])
        let seq = (try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM agent_commands WHERE agent_id = ?",
                                      arguments: [agent.rawValue]) ?? 0) + 1
        try db.execute(sql: """
            INSERT INTO agent_commands (agent_id, seq, kind, task_id, epoch, tags, resources, created_at, expires_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [agent.rawValue, seq, kind.rawValue, task?.rawValue, epoch?.rawValue,
                             try tags.map(json), try resources.map(json), now.timeIntervalSince1970,
                             now.timeIntervalSince1970 + ttl])
        return seq
    }

    static func update(_ db: any SQLDatabase, agent: AgentID, tags: [String]?, resources: ResourceVector?) throws {
        if let tags {
            try db.execute(sql: "UPDATE agents SET tags = ? WHERE id = ?", arguments: [try json(tags), agent.rawValue])
        }
        if let r = resources {
            try db.execute(sql: "UPDATE agents SET cpu_millis = ?, ram = ?, disk = ?, gpus = ? WHERE id = ?",
                           arguments: [r.milliCPUs, r.ram, r.disk, r.gpus, agent.rawValue])
        }
    }
}
