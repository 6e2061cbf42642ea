import Foundation

/// What the master can tell an agent (docs/ARCHITECTURE.md §6). Every command is a
/// durable row with a per-agent sequence number; delivery is at-least-once and
/// the agent applies each idempotently.
public enum CommandKind: String, Codable, Sendable, CaseIterable {
    /// Stop a task (SIGTERM to its process group, SIGKILL after a grace period): it was cancelled.
    case cancel
    /// Stop a task and forget it: its job was paused with kill (the master already requeued it).
    case drop
    /// Give back a prefetched lease not started yet, as a `released` finish (work stealing: an idle
    /// agent has room for it); a lease the agent has already started is kept, and its start counts.
    case giveBack = "give_back"
    /// Finish what runs, claim nothing new.
    case drain
    case undrain
    /// New tags and/or resource limits.
    case update
    /// Stop the agent gracefully (its tasks go back to the queue).
    case shutdown
    /// Does nothing but prove the channel works (the agent's applied sequence moves).
    case ping
}

public struct AgentCommand: Codable, Sendable, Equatable {
    public var seq: Int64
    public var kind: CommandKind
    public var task: TaskID?
    public var epoch: LeaseEpoch?
    public var tags: [String]?
    public var resources: ResourceVector?
    public var createdAt: Date
    public var expiresAt: Date

    public init(seq: Int64, kind: CommandKind, task: TaskID? = nil, epoch: LeaseEpoch? = nil, tags: [String]? = nil,
                resources: ResourceVector? = nil, createdAt: Date, expiresAt: Date) {
        self.seq = seq
        self.kind = kind
        self.task = task
        self.epoch = epoch
        self.tags = tags
        self.resources = resources
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }

    enum CodingKeys: String, CodingKey {
        case seq, kind, task, epoch, tags, resources
        case createdAt = "created_at"
        case expiresAt = "expires_at"
    }
}

/// `GET /v1/agents/{id}/commands?after=SEQ&wait=S`, and an exchange's `talkback`.
///
/// Read leniently: a command the reader cannot read (a kind a newer master added) is left out
/// instead of failing the whole batch, and `last` still takes the agent's cursor past it, so the
/// channel never sticks on a command this agent does not know (docs/ARCHITECTURE.md §6).
public struct CommandBatch: Codable, Sendable {
    public var commands: [AgentCommand]
    /// The highest sequence number in `commands`, or `after` when there are none: ask again with it.
    public var last: Int64
    public init(commands: [AgentCommand], last: Int64) {
        self.commands = commands
        self.last = last
    }

    enum CodingKeys: String, CodingKey { case commands, last }

    /// One command, or only its sequence number when it cannot be read.
    private struct Entry: Decodable {
        var seq: Int64
        var command: AgentCommand?

        private enum CodingKeys: String, CodingKey { case seq }

        init(from decoder: any Decoder) throws {
            seq = try decoder.container(keyedBy: CodingKeys.self).decode(Int64.self, forKey: .seq)
            command = try? AgentCommand(from: decoder)
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let entries = try container.decode([Entry].self, forKey: .commands)
        let last = try container.decode(Int64.self, forKey: .last)
        self.init(commands: entries.compactMap(\.command), last: max(last, entries.map(\.seq).max() ?? last))
    }
}

/// An exchange's talkback poll: the commands after `after` come back in the exchange's answer
/// (`ExchangeResponse.talkback`), and a held exchange also ends when one is posted. An agent's
/// one long-poll carries both its claim and its talkback.
public struct TalkbackPoll: Codable, Sendable, Equatable {
    /// The last command the agent has received: the answer brings those after it.
    public var after: Int64
    /// Seconds the exchange may be held waiting for a command (or, with a claim, for work).
    public var wait: Double

    public init(after: Int64, wait: Double = 0) {
        self.after = after
        self.wait = wait
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case after, wait }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        after = try c.decodeWholeNumber(Int64.self, forKey: .after)
        wait = try c.decodeIfPresent(Double.self, forKey: .wait) ?? 0
        try decoder.validate(self)
    }
}

extension TalkbackPoll: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) {
        try require(after >= 0 ? nil : "after is a sequence number ≥ 0", at: "after")
        try require(FieldRules.longPollWait(wait), at: "wait")
    }
}

/// `POST /v1/agents/{id}/commands` (admin): one command for one agent.
public struct CommandRequest: Codable, Sendable {
    public var kind: CommandKind
    public var task: TaskID?
    public var tags: [String]?
    public var resources: ResourceVector?
    /// Seconds until the command expires undelivered (default one day).
    public var ttl: Double?

    public init(kind: CommandKind, task: TaskID? = nil, tags: [String]? = nil, resources: ResourceVector? = nil,
                ttl: Double? = nil) {
        self.kind = kind
        self.task = task
        self.tags = tags
        self.resources = resources
        self.ttl = ttl
    }

    public static let defaultTTL: Double = 24 * 3600

    enum CodingKeys: String, CodingKey, CaseIterable { case kind, task, tags, resources, ttl }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(CommandKind.self, forKey: .kind)
        task = try c.decodeIfPresent(TaskID.self, forKey: .task)
        tags = c.contains(.tags) ? try c.decodeIfPresent([String].self, forKey: .tags) ?? [] : nil
        resources = try c.decodeIfPresent(ResourceVector.self, forKey: .resources)
        ttl = try c.decodeIfPresent(Double.self, forKey: .ttl)
        // Fields a kind of command needs are part of its shape: missing, they are said as missing.
        if (kind == .cancel || kind == .drop || kind == .giveBack) && task == nil {
            throw DecodingError.keyNotFound(CodingKeys.task, .init(codingPath: c.codingPath,
                debugDescription: "a \(kind.rawValue) command names its task"))
        }
        if kind == .update && tags == nil && resources == nil {
            throw DecodingError.keyNotFound(CodingKeys.tags, .init(codingPath: c.codingPath,
                debugDescription: "an update command carries tags or resources"))
        }
        try decoder.validate(self)
        tags = tags.map(TaskRequirements.tagSet)
    }
}

extension CommandRequest: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) {
        if let tags { try require(FieldRules.tags(tags), at: "tags") }
        if let ttl { try require(ttl.isFinite && ttl > 0 && ttl <= 30 * 86400 ? nil : "ttl is between 0 and 30 days, in seconds", at: "ttl") }
    }
}

public struct CommandAccepted: Codable, Sendable {
    public var seq: Int64
    public init(seq: Int64) { self.seq = seq }
}
