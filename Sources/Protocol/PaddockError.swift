import Foundation

/// The one error type that crosses the wire: `{"error": CODE, "message": TEXT, "field"?: PATH}`.
/// The master throws it and turns it into a 4xx/5xx; clients decode it back.
public struct PaddockError: Error, Codable, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var code: String
    public var message: String
    public var field: String?

    public init(status: Int, code: String, message: String, field: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
    }

    enum CodingKeys: String, CodingKey { case code = "error", message, field }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        status = 0
        code = try c.decode(String.self, forKey: .code)
        message = try c.decode(String.self, forKey: .message)
        field = try c.decodeIfPresent(String.self, forKey: .field)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(code, forKey: .code)
        try c.encode(message, forKey: .message)
        try c.encodeIfPresent(field, forKey: .field)
    }

    public var description: String {
        field.map { "\(code): \(message) (field \($0))" } ?? "\(code): \(message)"
    }

    public static func invalid(_ message: String, field: String? = nil) -> PaddockError {
        PaddockError(status: 400, code: "invalid_request", message: message, field: field)
    }
    public static func malformed(_ message: String) -> PaddockError {
        PaddockError(status: 400, code: "malformed_json", message: message)
    }
    public static func notFound(_ what: String) -> PaddockError {
        PaddockError(status: 404, code: "not_found", message: "\(what) does not exist")
    }
    public static let unauthorized = PaddockError(
        status: 401, code: "unauthorized", message: "missing or invalid bearer token")
    public static func forbidden(_ message: String) -> PaddockError {
        PaddockError(status: 403, code: "forbidden", message: message)
    }
    public static func staleEpoch(task: TaskID, sent: LeaseEpoch, current: LeaseEpoch) -> PaddockError {
        PaddockError(status: 409, code: "stale_epoch",
                     message: "task \(task) is leased under epoch \(current), not \(sent): this report no longer counts")
    }
    /// A report about a task the caller does not hold under `sent` (409 `stale_epoch`), saying why: the task is
    /// leased to no agent (`state`), to another agent, or under another epoch (`current`). The other agent is not named.
    public static func staleLease(task: TaskID, sent: LeaseEpoch, current: LeaseEpoch, state: TaskState,
                                  heldByCaller: Bool) -> PaddockError {
        if !state.isLeased {
            return PaddockError(status: 409, code: "stale_epoch",
                                message: "task \(task) is \(state.rawValue), leased to no agent: this report (epoch \(sent)) no longer counts")
        }
        if !heldByCaller {
            return PaddockError(status: 409, code: "stale_epoch",
                                message: "task \(task) is leased to another agent: this report (epoch \(sent)) no longer counts")
        }
        return staleEpoch(task: task, sent: sent, current: current)
    }
    public static func illegalTransition(_ task: TaskID, from: TaskState, via: TaskTransition) -> PaddockError {
        PaddockError(status: 409, code: "illegal_transition",
                     message: "task \(task) is \(from.rawValue): cannot \(via.verb)")
    }
    public static func conflict(_ message: String) -> PaddockError {
        PaddockError(status: 409, code: "conflict", message: message)
    }
    /// An `Idempotency-Key` used before with another body (RFC draft "The Idempotency-Key HTTP Header Field").
    public static func idempotencyKeyReused(_ key: String) -> PaddockError {
        PaddockError(status: 422, code: "idempotency_key_reused",
                     message: "Idempotency-Key '\(key.prefix(64))' was used with another body: use a new key for a new job")
    }
    public static func tooLarge(_ message: String) -> PaddockError {
        PaddockError(status: 413, code: "too_large", message: message)
    }
    /// A client past its request rate (the master sends `Retry-After` with it).
    public static func rateLimited(_ message: String) -> PaddockError {
        PaddockError(status: 429, code: "rate_limited", message: message)
    }
    public static func unavailable(_ message: String) -> PaddockError {
        PaddockError(status: 503, code: "unavailable", message: message)
    }
    /// The master is up but its database does not answer: a passing condition, so clients retry
    /// (the master sends `Retry-After` with it).
    public static let storeUnavailable = unavailable("the database is unreachable; retry")
}
