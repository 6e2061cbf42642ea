import Foundation

/// `POST /v1/agents/{id}/exceptions`: an error the agent could not handle (a task that could not be
/// launched, an upload that failed, a crash of one of its loops). At most 64 KiB.
public struct ExceptionReport: Codable, Sendable {
    public var type: String
    public var message: String
    public var context: [String: String]
    public var task: TaskID?
    public var at: Date?

    public init(type: String, message: String, context: [String: String] = [:], task: TaskID? = nil, at: Date? = nil) {
        self.type = type
        self.message = message
        self.context = context
        self.task = task
        self.at = at
    }

    public static let maxBytes = 64 * 1024

    enum CodingKeys: String, CodingKey, CaseIterable { case type, message, context, task, at }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decode(String.self, forKey: .type)
        message = try c.decode(String.self, forKey: .message)
        context = try c.decodeIfPresent([String: String].self, forKey: .context) ?? [:]
        task = try c.decodeIfPresent(TaskID.self, forKey: .task)
        // Read here, not by the decoder's date strategy: its failure carries no field, and came out as
        // "body is not valid JSON" (found by the fuzzing, Tests/fuzz).
        if let text = try c.decodeIfPresent(String.self, forKey: .at) {
            guard let date = Self.time(text) else {
                throw DecodingError.dataCorruptedError(forKey: .at, in: c,
                    debugDescription: "at is an ISO 8601 time such as 2025-01-31T12:00:00Z")
            }
            at = date
        } else {
            at = nil
        }
        try decoder.validate(self)
    }

    /// An ISO 8601 internet time, with or without fractional seconds.
    static func time(_ text: String) -> Date? {
        guard text.utf8.count <= 64 else { return nil }
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}

extension ExceptionReport: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) {
        try require(!type.isEmpty && type.count <= 128 ? nil : "type is 1 to 128 characters", at: "type")
        try require(message.utf8.count <= 16 * 1024 ? nil : "message is at most 16 KiB", at: "message")
        try require(context.count <= 64 ? nil : "at most 64 context entries", at: "context")
    }
}

public struct ExceptionView: Codable, Sendable {
    public var id: Int64
    public var agent: AgentID
    public var type: String
    public var message: String
    public var context: [String: String]
    public var task: TaskID?
    public var at: Date

    public init(id: Int64, agent: AgentID, type: String, message: String, context: [String: String], task: TaskID?, at: Date) {
        self.id = id
        self.agent = agent
        self.type = type
        self.message = message
        self.context = context
        self.task = task
        self.at = at
    }
}

/// `GET /v1/master`: the master itself.
public struct MasterInfo: Codable, Sendable {
    public struct Percentiles: Codable, Sendable {
        public var p50: Double
        public var p90: Double
        public var p99: Double
        public init(p50: Double, p90: Double, p99: Double) {
            self.p50 = p50
            self.p90 = p90
            self.p99 = p99
        }
    }

    public var version: String
    public var startedAt: Date
    public var uptimeSeconds: Double
    public var store: String
    public var requests: Int
    public var unhandledErrors: Int
    /// Over the most recent requests (long-polls excluded: their duration is their wait).
    public var requestMilliseconds: Percentiles
    public var claims: Int
    public var steals: Int
    public var jobs: Int
    public var tasks: TaskCounts
    public var agents: [String: Int]

    public init(version: String, startedAt: Date, uptimeSeconds: Double, store: String, requests: Int, unhandledErrors: Int,
                requestMilliseconds: Percentiles, claims: Int, steals: Int, jobs: Int, tasks: TaskCounts, agents: [String: Int]) {
        self.version = version
        self.startedAt = startedAt
        self.uptimeSeconds = uptimeSeconds
        self.store = store
        self.requests = requests
        self.unhandledErrors = unhandledErrors
        self.requestMilliseconds = requestMilliseconds
        self.claims = claims
        self.steals = steals
        self.jobs = jobs
        self.tasks = tasks
        self.agents = agents
    }

    enum CodingKeys: String, CodingKey {
        case version, store, requests, claims, steals, jobs, tasks, agents
        case startedAt = "started_at"
        case uptimeSeconds = "uptime_seconds"
        case unhandledErrors = "unhandled_errors"
        case requestMilliseconds = "request_ms"
    }
}
