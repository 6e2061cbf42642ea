import Foundation
import Hummingbird
import NIOCore
import PaddockProtocol

extension MasterAPI {
    func listTasks(_ request: Request, _ context: MasterContext) async throws -> Response {
        try context.require(.read)
        var filter = TaskFilter()
        if let job = Self.query(request, "job") {
            guard let id = JobID(job) else { throw PaddockError.invalid("job is a job id such as j12", field: "job") }
            filter.job = id
        }
        if let state = Self.query(request, "state") {
            guard let value = TaskState(rawValue: state) else {
                throw PaddockError.invalid("state is one of \(TaskState.allCases.map(\.rawValue).joined(separator: ", "))", field: "state")
            }
            filter.state = value
        }
        if let agent = Self.query(request, "agent") {
            guard let id = AgentID(agent) else { throw PaddockError.invalid("agent is an agent id such as a3", field: "agent") }
            filter.agent = id
        }
        var page = try await store.tasks(filter, page: try Self.page(request))
        page.items = try await markUnplaceable(page.items)
        return try Self.json(page)
    }

    func getTask(_ request: Request, _ context: MasterContext) async throws -> Response {
        try context.require(.read)
        let task = try await store.task(try Self.id(TaskID.self, context, what: "task"), history: true)
        return try Self.json(try await markUnplaceable([task])[0])
    }

    func markUnplaceable(_ tasks: [TaskView]) async throws -> [TaskView] {
        guard tasks.contains(where: { $0.state == .queued }) else { return tasks }
        let agents = try await store.agents().filter { $0.state != .disabled }
        return tasks.map { task in
            guard task.state == .queued else { return task }
            var task = task
            task.fitsNoAgent = !agents.contains {
                ClaimPolicy.canEverRun(task.requirements, capacity: $0.resources.total, tags: Set($0.tags))
            }
            return task
        }
    }

    func getTaskLogs(_ request: Request, _ context: MasterContext) async throws -> Response {
        try context.require(.read)
        let id = try Self.id(TaskID.self, context, what: "task")
        var attempt: Int?
        if let text = Self.query(request, "attempt") {
            guard let value = Int(text), value >= 1 else { throw PaddockError.invalid("attempt is ≥ 1", field: "attempt") }
            attempt = value
        }
        let follow = try Self.flag(request, "follow") ?? false
        var from: Int64 = 0
        if let text = Self.query(request, "from") {
            guard let value = Int64(text), value >= 0 else { throw PaddockError.invalid("from is a byte offset ≥ 0", field: "from") }
            from = value
        }
        // Fail before the headers go out if the task does not exist; then stream page by page,
        // never holding more than a page of the log in memory.
        let first = try await store.readLog(task: id, attempt: attempt, after: from, limit: 64)
        let start = from
        let store = self.store
        let logWake = self.logWake
        let body = ResponseBody { writer in
            var page = first
            var position = start
            var lastOutput = ContinuousClock.now
            while true {
                let generation = await logWake.generation
                for chunk in page.chunks {
                    try await writer.write(ByteBuffer(bytes: chunk))
                    position += Int64(chunk.count)
                    lastOutput = .now
                }
                if page.chunks.isEmpty {
                    // Following: wait for the agent's next upload, until the run is over and all of it was sent.
                    // A run silent for 50 s ends the answer before a frontend's read timeout would cut it;
                    // the client asks again from where it is.
                    guard follow, page.live, !(await logWake.isClosed),
                          ContinuousClock.now - lastOutput < Self.followSilence else { break }
                    await logWake.wait(since: generation, timeout: .seconds(1))
                }
                page = try await store.readLog(task: id, attempt: first.attempt, after: position, limit: 64)
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: body)
    }

    /// How long a followed run may stay silent before the answer ends (below frontends' 75 s read timeouts).
    static let followSilence: Duration = .seconds(50)

    func uploadTaskLogs(_ request: Request, _ context: MasterContext) async throws -> Response {
        let agent = try context.requireAgent()
        let id = try Self.id(TaskID.self, context, what: "task")
        guard let epoch = Self.query(request, "epoch").flatMap(Int64.init) else {
            throw PaddockError.invalid("epoch is required", field: "epoch")
        }
        guard let offset = Self.query(request, "offset").flatMap(Int64.init), offset >= 0 else {
            throw PaddockError.invalid("offset is required (≥ 0)", field: "offset")
        }
        let buffer = try await Self.body(of: request, limit: BodyLimit.logChunk)
        let size = try await store.appendLog(task: id, agent: agent.id, epoch: LeaseEpoch(epoch), offset: offset,
                                             data: Data(buffer.readableBytesView))
        await logWake.notifyAll()
        return try Self.json(LogAck(size: size))
    }

    func startTask(_ request: Request, _ context: MasterContext) async throws -> Response {
        let agent = try context.requireAgent()
        let id = try Self.id(TaskID.self, context, what: "task")
        let report = try await Self.decode(TaskReport.self, from: request, limit: BodyLimit.small)
        let task = try await store.start(task: id, agent: agent.id, epoch: report.epoch, leaseUntil: leaseUntil, now: store.clock.now())
        return try Self.json(task)
    }

    func progressTask(_ request: Request, _ context: MasterContext) async throws -> Response {
        let agent = try context.requireAgent()
        let id = try Self.id(TaskID.self, context, what: "task")
        let report = try await Self.decode(TaskReport.self, from: request, limit: BodyLimit.small)
        guard let progress = report.progress else { throw PaddockError.invalid("progress is required", field: "progress") }
        try await store.progress(task: id, agent: agent.id, epoch: report.epoch, progress: progress,
                                 leaseUntil: leaseUntil, now: store.clock.now())
        return Response(status: .noContent)
    }

    func finishTask(_ request: Request, _ context: MasterContext) async throws -> Response {
        let agent = try context.requireAgent()
        let id = try Self.id(TaskID.self, context, what: "task")
        let report = try await Self.decode(FinishReport.self, from: request, limit: BodyLimit.small)
        let task = try await store.finish(task: id, agent: agent.id, report: report, now: store.clock.now())
        // The agent's resources are free again, or the task is back in the queue: claimers may proceed;
        // log followers learn that the run is over.
        await wake.notifyAll()
        await logWake.notifyAll()
        return try Self.json(task)
    }
}
