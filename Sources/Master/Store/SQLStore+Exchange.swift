import Foundation
import PaddockProtocol

/// The agent exchange: an agent's reports and its claim in one transaction.
extension SQLStore {
    public func exchange(agent: AgentID, _ request: ExchangeRequest, claim: ClaimOrder?, credential: String? = nil,
                         leaseUntil: Date, now: Date) async throws -> ExchangeOutcome {
        try await engine.write(lockingAgent: agent.rawValue) { db in
            try Self.exchange(db, agent: agent, request, claim: claim, credential: credential, leaseUntil: leaseUntil, now: now)
        }
    }

    /// Reports are applied task by task; a refused one (its lease moved on) changes nothing and the
    /// others stand: a start, progress or finish is checked before it writes (`ReportMove`), a log
    /// chunk or a status runs in a savepoint. Tasks whose start this exchange confirms come last:
    /// in the master's count a prefetched task starts into the room that the runs finished in the
    /// same exchange freed.
    /// Per task: the start, then its log, its progress (unless it also finished), its finish.
    static func exchange(_ db: any SQLDatabase, agent: AgentID, _ request: ExchangeRequest, claim: ClaimOrder?,
                         credential: String? = nil, leaseUntil: Date, now: Date) throws -> ExchangeOutcome {
        // The agent's row first, as heartbeats and claims take it: one lock order (agent, then its
        // tasks) everywhere, so that two masters never deadlock on one agent's rows.
        try Self.lockAgent(db, agent, credential: credential)
        var response = ExchangeResponse()
        var finished = false
        let starts = Dictionary(request.started.map { ($0.task, $0.epoch) }, uniquingKeysWith: { _, last in last })
        var tasks: [TaskID] = []
        var seen: Set<TaskID> = []
        for task in request.logs.map(\.task) + request.progress.map(\.task) + request.finished.map(\.task)
            + request.started.map(\.task) where seen.insert(task).inserted {
            tasks.append(task)
        }
        let order = tasks.filter { starts[$0] == nil } + tasks.filter { starts[$0] != nil }
        try Self.readLeases(db, order)
        let logs = Dictionary(grouping: request.logs, by: \.task)
        let progress = Dictionary(request.progress.map { ($0.task, $0) }, uniquingKeysWith: { _, last in last })
        let finishes = Dictionary(request.finished.map { ($0.task, $0.report) }, uniquingKeysWith: { _, last in last })

        func attempt(_ task: TaskID, _ epoch: LeaseEpoch, _ kind: ExchangeRefusal.Kind, _ body: () throws -> Void) throws -> Bool {
            do {
                try db.savepoint(body)
                return true
            } catch let error as PaddockError where error.status < 500 {
                response.refused.append(ExchangeRefusal(task: task, epoch: epoch, kind: kind, error: error))
                return false
            }
        }

        /// A report whose refusal is decided before it writes (`ReportMove`): no savepoint, which on
        /// PostgreSQL was two statements a report, most of an exchange's.
        func checked<Move>(_ task: TaskID, _ epoch: LeaseEpoch, _ kind: ExchangeRefusal.Kind, check: () throws -> Move,
                           apply: (Move) throws -> Void) throws -> Bool {
            let move: Move
            do {
                move = try check()
            } catch let error as PaddockError where error.status < 500 {
                response.refused.append(ExchangeRefusal(task: task, epoch: epoch, kind: kind, error: error))
                return false
            }
            do {
                try apply(move)
            } catch let error as PaddockError where error.status < 500 {
                // An apply refuses nothing; if one ever did, what it wrote could not be undone alone:
                // the whole transaction fails instead of standing half-applied.
                throw ReportApplyRefused(task: task, kind: kind, error: error)
            }
            return true
        }

        // The successes' dependents are looked up together after the reports, before the claim (which
        // may take what they unblock).
        let tallying = db as? TallyingDatabase
        tallying?.defersDependents = true
        for task in order {
            if let epoch = starts[task] {
                // A refused start fences the whole run: its log, progress and finish no longer count.
                guard try checked(task, epoch, .start, check: {
                    try Self.checkStart(db, task: task, agent: agent, epoch: epoch)
                }, apply: {
                    try Self.applyStart(db, $0, agent: agent, epoch: epoch, leaseUntil: leaseUntil, now: now)
                }) else { continue }
            }
            for report in logs[task] ?? [] {
                var appended: (received: Int64, capped: Bool) = (0, false)
                if try attempt(task, report.epoch, .log, {
                    appended = try Self.appendLogTellingCap(db, task: task, agent: agent, epoch: report.epoch,
                                                            offset: report.offset, data: report.data)
                }) {
                    response.logs.append(ExchangeLogAck(task: task, epoch: report.epoch, size: appended.received,
                                                        capped: appended.capped ? true : nil))
                }
            }
            if let report = progress[task], report.status == nil {
                if finishes[task] == nil {
                    _ = try checked(task, report.epoch, .progress, check: {
                        try Self.checkProgress(db, task: task, agent: agent, epoch: report.epoch)
                    }, apply: {
                        try Self.applyProgress(db, task: task, epoch: report.epoch, progress: report.progress,
                                               leaseUntil: leaseUntil)
                    })
                }
            } else if let report = progress[task] {
                // A run's last status counts even when its finish comes in the same exchange.
                _ = try attempt(task, report.epoch, .progress, {
                    if finishes[task] == nil {
                        try Self.progress(db, task: task, agent: agent, epoch: report.epoch, progress: report.progress,
                                          leaseUntil: leaseUntil)
                    }
                    if let status = report.status {
                        try Self.recordStatus(db, task: task, agent: agent, epoch: report.epoch, status: status, now: now)
                    }
                })
            }
            if let report = finishes[task] {
                if try checked(task, report.epoch, .finish, check: {
                    try Self.checkFinish(db, task: task, agent: agent, report: report)
                }, apply: {
                    try Self.applyFinish(db, $0, agent: agent, report: report, now: now)
                }) {
                    finished = true
                }
            }
        }
        if let tallying {
            tallying.defersDependents = false
            try Self.unblockDependents(db, of: tallying.takeSucceeded(), now: now)
        }
        var stolen = 0
        var room = ClaimRoom.none
        if let claim {
            let outcome = try Self.claim(db, claim)
            response.leases = outcome.leases
            stolen = outcome.stolen
            room = outcome.room
        }
        // After the claim: what this agent took of it is no one else's to wake for.
        let readied = try Self.readied(db, finished: finished)
        if let talkback = request.talkback {
            let commands = try Self.commands(db, for: agent, after: talkback.after, now: now)
            response.talkback = CommandBatch(commands: commands, last: commands.last?.seq ?? talkback.after)
        }
        return ExchangeOutcome(response: response, stolen: stolen, finished: finished, readied: readied, room: room,
                               logged: !response.logs.isEmpty)
    }

    /// What the transaction made claimable and left queued, from the tasks it queued: at most 256
    /// looked up (beyond, the work is counted without its shapes). Outside a tallying transaction, where the
    /// queued tasks are not noted, a finish may have queued anything.
    static func readied(_ db: any SQLDatabase, finished: Bool) throws -> NewWork {
        guard let tallying = db as? TallyingDatabase else { return finished ? .anything : NewWork() }
        let queued = tallying.notes.queued
        var work = NewWork()
        guard !queued.isEmpty else { return work }
        let looked = queued.prefix(256)
        let list = inList(looked.map(\.rawValue))
        let rows = try SQLRow.fetchAll(db, sql: """
            SELECT job_id, cpu_millis, ram, disk, gpus, tags FROM tasks
            WHERE id IN (\(list.marks)) AND state = 'queued'
            """, arguments: list.arguments)
        for row in rows { work.add(try requirements(row), job: JobID(rawValue: row["job_id"])) }
        if queued.count > looked.count { work.formUnion(.unshaped(queued.count - looked.count)) }
        return work
    }
}

/// An exchange report's write refused after the report was checked: a broken invariant of
/// `SQLStore.ReportMove` (a 500: the exchange is not answered, the agent sends it again).
struct ReportApplyRefused: Error, CustomStringConvertible {
    let task: TaskID
    let kind: ExchangeRefusal.Kind
    let error: PaddockError
    var description: String { "the \(kind) of task \(task) was refused after its check: \(error)" }
}
