import Foundation

/// `PATCH /v1/jobs/{id}`.
public struct JobPatch: Codable, Sendable {
    public var priority: Int?
    public var labels: [String: String]?
    /// Forget the job's blocklist: every agent may run its tasks again.
    public var clearBlocklist: Bool?

    public init(priority: Int? = nil, labels: [String: String]? = nil, clearBlocklist: Bool? = nil) {
        self.priority = priority
        self.labels = labels
        self.clearBlocklist = clearBlocklist
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case priority, labels
        case clearBlocklist = "clear_blocklist"
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        priority = try c.decodeWholeNumberIfPresent(Int.self, forKey: .priority)
        labels = try c.decodeIfPresent([String: String].self, forKey: .labels)
        clearBlocklist = try c.decodeIfPresent(Bool.self, forKey: .clearBlocklist)
        try decoder.validate(self)
    }
}

extension JobPatch: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) {
        if let priority { try require(FieldRules.priority(priority), at: "priority") }
        if let labels { try require(FieldRules.labels(labels), at: "labels") }
        try require(priority == nil && labels == nil && clearBlocklist == nil ? "nothing to change" : nil, at: "priority")
    }
}

/// `POST /v1/jobs/{id}/pause`: with `kill`, running tasks are stopped and go back to the queue.
public struct PauseRequest: Codable, Sendable {
    public var kill: Bool
    public init(kill: Bool = false) { self.kill = kill }
    enum CodingKeys: String, CodingKey, CaseIterable { case kill }
    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        kill = try decoder.container(keyedBy: CodingKeys.self).decodeIfPresent(Bool.self, forKey: .kill) ?? false
    }
}

/// `PATCH /v1/tasks`: the same change to many tasks, all or nothing.
public struct TaskBulkPatch: Codable, Sendable {
    public enum StateChange: String, Codable, Sendable {
        /// Cancel each task (stopping it where it runs).
        case cancelled
        /// Retry each (failed or cancelled) task.
        case queued
    }

    public var ids: [TaskID]
    public var priority: Int?
    public var state: StateChange?

    public init(ids: [TaskID], priority: Int? = nil, state: StateChange? = nil) {
        self.ids = ids
        self.priority = priority
        self.state = state
    }

    public static let maxIDs = 10_000

    enum CodingKeys: String, CodingKey, CaseIterable { case ids, priority, state }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        ids = try c.decode([TaskID].self, forKey: .ids)
        priority = try c.decodeWholeNumberIfPresent(Int.self, forKey: .priority)
        state = try c.decodeIfPresent(StateChange.self, forKey: .state)
        try decoder.validate(self)
    }
}

extension TaskBulkPatch: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) {
        try require(!ids.isEmpty && ids.count <= Self.maxIDs ? nil : "ids holds 1 to \(Self.maxIDs) task ids", at: "ids")
        if let priority { try require(FieldRules.priority(priority), at: "priority") }
        try require(priority == nil && state == nil ? "give a priority or a state" : nil, at: "priority")
    }
}

public struct BulkResult: Codable, Sendable {
    public var updated: Int
    public init(updated: Int) { self.updated = updated }
}

/// `PATCH /v1/agents/{id}`.
public struct AgentPatch: Codable, Sendable {
    public var drain: Bool?
    public var disabled: Bool?
    public var tags: [String]?
    public var resources: ResourceVector?

    public init(drain: Bool? = nil, disabled: Bool? = nil, tags: [String]? = nil, resources: ResourceVector? = nil) {
        self.drain = drain
        self.disabled = disabled
        self.tags = tags
        self.resources = resources
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case drain, disabled, tags, resources }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        drain = try c.decodeIfPresent(Bool.self, forKey: .drain)
        disabled = try c.decodeIfPresent(Bool.self, forKey: .disabled)
        tags = c.contains(.tags) ? try c.decodeIfPresent([String].self, forKey: .tags) ?? [] : nil
        resources = try c.decodeIfPresent(ResourceVector.self, forKey: .resources)
        try decoder.validate(self)
        tags = tags.map(TaskRequirements.tagSet)
    }
}

extension AgentPatch: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) {
        if let tags { try require(FieldRules.tags(tags), at: "tags") }
        try require(drain == nil && disabled == nil && tags == nil && resources == nil ? "nothing to change" : nil, at: "drain")
    }
}
