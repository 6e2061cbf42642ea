import Foundation

/// `POST /v1/agents/{id}/exchange`: everything that happened on the agent since its last exchange,
/// and a claim for its free room, in one request. The master applies the reports and the claim in
/// one transaction (committed with whatever else arrived meanwhile: group commit) and answers with
/// what it refused, how much of each log it now holds, and the new leases.
///
/// Reports are idempotent (starts and finishes by epoch, logs by offset), so an exchange whose
/// answer was lost is simply sent again.
public struct ExchangeRequest: Codable, Sendable {
    /// Prefetched leases the agent has started since (their start is fenced here: a lease stolen
    /// meanwhile is refused, and the agent stops that run).
    public var started: [HeldLease]
    /// Output of running (or just ended) runs, each from the offset the master acknowledged last.
    public var logs: [ExchangeLog]
    /// The latest progress of running tasks.
    public var progress: [ExchangeProgress]
    /// Runs that ended.
    public var finished: [ExchangeFinish]
    /// Work for the agent's free room; nil asks for none.
    public var claim: ClaimRequest?
    /// The talkback commands after a cursor, in the answer; nil asks for none.
    public var talkback: TalkbackPoll?
    /// Which exchange of the agent process this is: the leases its claim grants carry the number,
    /// so that a heartbeat can tell one whose answer was lost from one still on its way
    /// (`HeartbeatRequest.answered`). Nil: those leases are told apart by their age alone.
    public var number: ExchangeNumber?

    public init(started: [HeldLease] = [], logs: [ExchangeLog] = [], progress: [ExchangeProgress] = [],
                finished: [ExchangeFinish] = [], claim: ClaimRequest? = nil, talkback: TalkbackPoll? = nil,
                number: ExchangeNumber? = nil) {
        self.started = started
        self.logs = logs
        self.progress = progress
        self.finished = finished
        self.claim = claim
        self.talkback = talkback
        self.number = number
    }

    /// How long the master may hold the exchange when it has nothing to answer yet: the longer of
    /// the claim's and the talkback's waits.
    public var wait: Double { max(claim?.wait ?? 0, talkback?.wait ?? 0) }

    public var hasReports: Bool { !(started.isEmpty && logs.isEmpty && progress.isEmpty && finished.isEmpty) }

    /// Bytes of log one exchange may carry (the body limit is a little above it, for the JSON around).
    public static let logBytes = 2 << 20
    /// Reports of each kind in one exchange.
    public static let maxReports = 4 * Limits.claimSlots

    enum CodingKeys: String, CodingKey, CaseIterable { case started, logs, progress, finished, claim, talkback, number }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        started = try c.decodeIfPresent([HeldLease].self, forKey: .started) ?? []
        logs = try c.decodeIfPresent([ExchangeLog].self, forKey: .logs) ?? []
        progress = try c.decodeIfPresent([ExchangeProgress].self, forKey: .progress) ?? []
        finished = try c.decodeIfPresent([ExchangeFinish].self, forKey: .finished) ?? []
        claim = try c.decodeIfPresent(ClaimRequest.self, forKey: .claim)
        talkback = try c.decodeIfPresent(TalkbackPoll.self, forKey: .talkback)
        number = try c.decodeIfPresent(ExchangeNumber.self, forKey: .number)
        try decoder.validate(self)
    }
}

/// An exchange's place among those one agent process sends: the process, by a number it drew at
/// random when it started (`incarnation`), and the exchange's rank in it (`sequence`, from 1 up).
public struct ExchangeNumber: Codable, Sendable, Hashable {
    public var incarnation: Int64
    public var sequence: Int64

    public init(incarnation: Int64, sequence: Int64) {
        self.incarnation = incarnation
        self.sequence = sequence
    }

    /// Both stay within what a JSON number holds exactly (2^53).
    public static let limit: Int64 = 1 << 53

    enum CodingKeys: String, CodingKey, CaseIterable { case incarnation, sequence }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        incarnation = try c.decodeWholeNumber(Int64.self, forKey: .incarnation)
        sequence = try c.decodeWholeNumber(Int64.self, forKey: .sequence)
        try decoder.validate(self)
    }
}

extension ExchangeNumber: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) {
        try require((1...Self.limit).contains(incarnation) ? nil : "incarnation is 1 to \(Self.limit)", at: "incarnation")
        try require((0...Self.limit).contains(sequence) ? nil : "sequence is 0 to \(Self.limit)", at: "sequence")
    }
}

extension ExchangeRequest: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) {
        for (key, count) in [(CodingKeys.started, started.count), (.logs, logs.count), (.progress, progress.count),
                             (.finished, finished.count)] where count > Self.maxReports {
            throw BrokenRule(field: key.stringValue, rule: "at most \(Self.maxReports) \(key.stringValue) reports in one exchange")
        }
        try require(logs.reduce(0, { $0 + $1.data.count }) <= Self.logBytes ? nil
                    : "at most \(Self.logBytes) bytes of log in one exchange", at: "logs")
    }
}

/// Part of a run's output: `data` starts at byte `offset` of the run's log.
public struct ExchangeLog: Codable, Sendable, Equatable {
    public var task: TaskID
    public var epoch: LeaseEpoch
    public var offset: Int64
    public var data: Data

    public init(task: TaskID, epoch: LeaseEpoch, offset: Int64, data: Data) {
        self.task = task
        self.epoch = epoch
        self.offset = offset
        self.data = data
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case task, epoch, offset, data }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        task = try c.decode(TaskID.self, forKey: .task)
        epoch = try c.decode(LeaseEpoch.self, forKey: .epoch)
        offset = try c.decodeWholeNumber(Int64.self, forKey: .offset)
        data = try c.decode(Data.self, forKey: .data)
        try decoder.validate(self)
    }
}

extension ExchangeLog: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) {
        try require(offset >= 0 ? nil : "offset is ≥ 0", at: "offset")
    }
}

/// A running task's progress, between 0 and 1, and the status it last printed (`openjd_status:`), if
/// that changed since the last report.
public struct ExchangeProgress: Codable, Sendable, Equatable {
    public var task: TaskID
    public var epoch: LeaseEpoch
    public var progress: Double
    public var status: String?

    public init(task: TaskID, epoch: LeaseEpoch, progress: Double, status: String? = nil) {
        self.task = task
        self.epoch = epoch
        self.progress = progress
        self.status = status
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case task, epoch, progress, status }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        task = try c.decode(TaskID.self, forKey: .task)
        epoch = try c.decode(LeaseEpoch.self, forKey: .epoch)
        progress = try c.decode(Double.self, forKey: .progress)
        status = try c.decodeIfPresent(String.self, forKey: .status)
        try decoder.validate(self)
    }
}

extension ExchangeProgress: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) {
        try require(FieldRules.progress(progress), at: "progress")
        if let status {
            try require(status.isEmpty || status.count > StdoutMessage.textLimit
                        ? "status is 1 to \(StdoutMessage.textLimit) characters" : nil, at: "status")
        }
    }
}

/// A run that ended: the task and how (the same report as `POST /v1/tasks/{id}/finish`).
public struct ExchangeFinish: Codable, Sendable, Equatable {
    public var task: TaskID
    public var report: FinishReport

    public init(task: TaskID, report: FinishReport) {
        self.task = task
        self.report = report
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case task, report }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        task = try c.decode(TaskID.self, forKey: .task)
        report = try c.decode(FinishReport.self, forKey: .report)
    }
}

/// The master's answer to an exchange. Every report not listed in `refused` was applied.
public struct ExchangeResponse: Codable, Sendable {
    /// Reports the master refused, each with the reason (a stale epoch: the lease moved on).
    public var refused: [ExchangeRefusal]
    /// For each task whose log was sent: how many bytes of that run's log the master now holds.
    public var logs: [ExchangeLogAck]
    /// New leases. Those with `prefetched` false run from this answer on (the master recorded them
    /// started); prefetched ones start when room frees up, confirmed by a later exchange.
    public var leases: [TaskLease]
    /// The commands after the request's talkback cursor; absent when it asked for none.
    public var talkback: CommandBatch?

    public init(refused: [ExchangeRefusal] = [], logs: [ExchangeLogAck] = [], leases: [TaskLease] = [],
                talkback: CommandBatch? = nil) {
        self.refused = refused
        self.logs = logs
        self.leases = leases
        self.talkback = talkback
    }
}

/// One report the master did not apply.
public struct ExchangeRefusal: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case start, log, progress, finish }
    public var task: TaskID
    public var epoch: LeaseEpoch
    public var kind: Kind
    public var status: Int
    public var code: String
    public var message: String

    public init(task: TaskID, epoch: LeaseEpoch, kind: Kind, error: PaddockError) {
        self.task = task
        self.epoch = epoch
        self.kind = kind
        status = error.status
        code = error.code
        message = error.message
    }
}

/// How many bytes of a run's log the master holds, after an exchange that carried some.
public struct ExchangeLogAck: Codable, Sendable, Equatable {
    public var task: TaskID
    public var epoch: LeaseEpoch
    public var size: Int64
    /// True once the run's log has reached the master's cap: the master drops what follows, so the
    /// agent stops sending it. Absent otherwise.
    public var capped: Bool?
    public init(task: TaskID, epoch: LeaseEpoch, size: Int64, capped: Bool? = nil) {
        self.task = task
        self.epoch = epoch
        self.size = size
        self.capped = capped
    }
}
