import Foundation
import Hummingbird
import PaddockProtocol

/// Users' control of jobs, tasks and agents, and the talkback channel.
extension MasterAPI {
    func patchJob(_ request: Request, _ context: MasterContext) async throws -> Response {
        let id = try await requireControl(job: context)
        let patch = try await Self.decode(JobPatch.self, from: request, limit: BodyLimit.small)
        if patch.clearBlocklist == true {
            try await store.clearBlocklist(job: id)
            await wake.notifyAll()
        }
        var job = try await store.patchJob(id, patch)
        job.blocklist = try await store.blocklist(job: id, threshold: config.blocklistAfter)
        return try Self.json(job)
    }

    func deleteJob(_ request: Request, _ context: MasterContext) async throws -> Response {
        let job = try await store.cancelJob(try await requireControl(job: context), archive: true, now: store.clock.now())
        await stoppedTasks()
        return try Self.json(job)
    }

    func cancelJob(_ request: Request, _ context: MasterContext) async throws -> Response {
        let job = try await store.cancelJob(try await requireControl(job: context), archive: false, now: store.clock.now())
        await stoppedTasks()
        return try Self.json(job)
    }

    func pauseJob(_ request: Request, _ context: MasterContext) async throws -> Response {
        let id = try await requireControl(job: context)
        let body = try await Self.body(of: request, limit: BodyLimit.small)
        var pause = PauseRequest()
        if body.readableBytes > 0 {
            pause = try await Self.decode(PauseRequest.self, from: Request(head: request.head, body: .init(buffer: body)),
                                          limit: BodyLimit.small)
        }
        if try Self.flag(request, "kill") == true { pause.kill = true }
        let job = try await store.pauseJob(id, kill: pause.kill, now: store.clock.now())
        await stoppedTasks()
        return try Self.json(job)
    }

    func resumeJob(_ request: Request, _ context: MasterContext) async throws -> Response {
        let job = try await store.resumeJob(try await requireControl(job: context))
        await wake.notifyAll()
        return try Self.json(job)
    }

    func retryJob(_ request: Request, _ context: MasterContext) async throws -> Response {
        let job = try await store.retryJob(try await requireControl(job: context), now: store.clock.now())
        await wake.notifyAll()
        return try Self.json(job)
    }

    func patchTasks(_ request: Request, _ context: MasterContext) async throws -> Response {
        try context.require(.submit)
        let patch = try await Self.decode(TaskBulkPatch.self, from: request, limit: BodyLimit.jobSpec)
        if case .user(let user) = context.caller, user.role != .admin {
            let owners = try await store.owners(of: patch.ids)
            for id in patch.ids {
                // A task that does not exist is the store's 404 below.
                if let owner = owners[id] { try context.requireControl(of: "task \(id)", ownedBy: owner) }
            }
        }
        let updated = try await store.patchTasks(patch, now: store.clock.now())
        await stoppedTasks()
        return try Self.json(BulkResult(updated: updated))
    }

    func cancelTask(_ request: Request, _ context: MasterContext) async throws -> Response {
        let task = try await store.cancelTask(try await requireControl(task: context), now: store.clock.now())
        await stoppedTasks()
        return try Self.json(task)
    }

    func retryTask(_ request: Request, _ context: MasterContext) async throws -> Response {
        let task = try await store.retryTask(try await requireControl(task: context), now: store.clock.now())
        await wake.notifyAll()
        return try Self.json(task)
    }

    func patchAgent(_ request: Request, _ context: MasterContext) async throws -> Response {
        try context.requireAdmin()
        let patch = try await Self.decode(AgentPatch.self, from: request, limit: BodyLimit.small)
        let agent = try await store.patchAgent(try Self.id(AgentID.self, context, what: "agent"), patch, now: store.clock.now())
        await stoppedTasks()
        return try Self.json(addresses.annotate(agent))
    }

    func deleteAgent(_ request: Request, _ context: MasterContext) async throws -> Response {
        try context.requireAdmin()
        let id = try Self.id(AgentID.self, context, what: "agent")
        try await store.forgetAgent(id, now: store.clock.now())
        addresses.forget(id)
        await wake.notifyAll()
        return Response(status: .noContent)
    }

    func sendCommand(_ request: Request, _ context: MasterContext) async throws -> Response {
        try context.requireAdmin()
        let command = try await Self.decode(CommandRequest.self, from: request, limit: BodyLimit.small)
        let seq = try await store.sendCommand(to: try Self.id(AgentID.self, context, what: "agent"), command, now: store.clock.now())
        await stoppedTasks()
        return try Self.json(CommandAccepted(seq: seq), status: .created)
    }

    /// The talkback long-poll: answers at once when a command above `after` waits, else after `wait` seconds.
    func listCommands(_ request: Request, _ context: MasterContext) async throws -> Response {
        let id = try Self.id(AgentID.self, context, what: "agent")
        if case .agent = context.caller { _ = try context.requireAgent(id) } else { try context.require(.read) }
        let after: Int64 = try Self.query(request, "after").map { text -> Int64 in
            guard let value = Int64(text), value >= 0 else { throw PaddockError.invalid("after is a sequence number ≥ 0", field: "after") }
            return value
        } ?? 0
        let wait = try Self.longPollWait(request)
        let deadline = ContinuousClock.now + .milliseconds(Int(wait * 1000))
        // One held poll per agent (issue 16): the agent's newer poll ends its older one, which answers
        // at once with what it has. Not 429: the older one is most often a poll whose connection died
        // unseen (the agent restarted, a frontend dropped it), and refusing the new one would leave the
        // agent deaf to its commands until the dead one timed out.
        let key: Int64? = if case .agent = context.caller { id.rawValue } else { nil }
        let mine = if let key { await commandWake.supersede(key) } else { UInt64(0) }
        let ticket = key != nil && wait > 0 ? await heldPolls.hold(id, on: context.channel) : nil
        defer { if let ticket { heldPolls.release(ticket) } }
        while true {
            let generation = await commandWake.generation
            let commands = try await store.commands(for: id, after: after, now: store.clock.now())
            let left = deadline - ContinuousClock.now
            let closing = await commandWake.isClosed
            let superseded = if let key { await commandWake.supersessions(key) != mine } else { false }
            if !commands.isEmpty || left <= .zero || closing || superseded {
                return try Self.json(CommandBatch(commands: commands, last: commands.last?.seq ?? after))
            }
            // A little jitter spreads the reconnections of many agents (Consul's blocking queries do the same).
            await commandWake.wait(since: generation, timeout: left + .milliseconds(Int.random(in: 0...(wait > 1 ? 250 : 0))),
                                   key: key, keySeen: mine)
        }
    }

    /// The job in the path, which the caller must be allowed to control (an admin, or its owner's submit token).
    func requireControl(job context: MasterContext) async throws -> JobID {
        try context.require(.submit)
        let id = try Self.id(JobID.self, context, what: "job")
        if case .user(let user) = context.caller, user.role != .admin {
            try context.requireControl(of: "job \(id)", ownedBy: try await store.job(id).owner)
        }
        return id
    }

    /// The task in the path, whose job the caller must be allowed to control.
    func requireControl(task context: MasterContext) async throws -> TaskID {
        try context.require(.submit)
        let id = try Self.id(TaskID.self, context, what: "task")
        if case .user(let user) = context.caller, user.role != .admin {
            guard let owner = try await store.owners(of: [id])[id] else { throw PaddockError.notFound("task \(id)") }
            try context.requireControl(of: "task \(id)", ownedBy: owner)
        }
        return id
    }

    /// After a change that may have stopped tasks or queued commands: wake talkback long-polls
    /// (the agents must hear) and claimers (resources or tasks may be free).
    func stoppedTasks() async {
        await commandWake.notifyAll()
        await wake.notifyAll()
        await logWake.notifyAll()
    }
}
