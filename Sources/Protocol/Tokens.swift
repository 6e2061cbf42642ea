import Foundation

/// A named token's id on the wire (`k7`).
public struct TokenID: PrefixedID {
    public static let prefix: Character = "k"
    public let rawValue: Int64
    public init(rawValue: Int64) { self.rawValue = rawValue }
}

/// What a named token may do (docs/OPERATIONS.md "Security"). `read` sees everything; `submit`
/// also submits jobs and controls the jobs it owns (owner = the token's name); `admin` does
/// everything, agents and tokens included; `join` only enrolls agents.
public enum TokenRole: String, Codable, Sendable, CaseIterable {
    case admin, submit, read, join

    /// Whether a caller of this role may make a call that needs `needed`.
    public func allows(_ needed: TokenRole) -> Bool {
        switch (self, needed) {
        case (.admin, _): true
        case (.submit, .submit), (.submit, .read): true
        case (.read, .read): true
        case (.join, .join): true
        default: false
        }
    }
}

/// Whether a token still opens anything.
public enum TokenState: String, Codable, Sendable, CaseIterable {
    case active, expired, revoked
    /// A join token whose uses are all spent.
    case usedUp = "used_up"
}

/// `POST /v1/tokens` (admin).
public struct TokenRequest: Codable, Sendable, Equatable {
    public var name: String
    public var role: TokenRole
    /// Seconds from now until the token stops working; nil: it never expires (join tokens: a day).
    public var ttl: Double?
    /// Join tokens only: how many enrollments it allows; nil: no limit.
    public var uses: Int?

    public init(name: String, role: TokenRole, ttl: Double? = nil, uses: Int? = nil) {
        self.name = name
        self.role = role
        self.ttl = ttl
        self.uses = uses
    }

    /// A join token given no TTL lasts a day.
    public static let defaultJoinTTL: Double = 24 * 3600
    /// The longest TTL: ten years.
    public static let maxTTL: Double = 10 * 365 * 24 * 3600
    public static let maxUses = 1_000_000

    enum CodingKeys: String, CodingKey, CaseIterable { case name, role, ttl, uses }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        role = try c.decode(TokenRole.self, forKey: .role)
        ttl = try c.decodeIfPresent(Double.self, forKey: .ttl)
        uses = try c.decodeIfPresent(Int.self, forKey: .uses)
        try decoder.validate(self)
    }
}

extension TokenRequest: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) {
        try require(!name.isEmpty && name.count <= Limits.nameLength && name.isSafeToken ? nil
                     : "a token name is letters, digits and -_.: (≤ \(Limits.nameLength) chars)", at: "name")
        if let ttl {
            try require(ttl.isFinite && ttl >= 1 && ttl <= Self.maxTTL ? nil
                        : "ttl is a number of seconds between 1 and \(Int(Self.maxTTL)) (ten years)", at: "ttl")
        }
        if let uses {
            try require(role == .join ? nil : "uses applies to join tokens only", at: "uses")
            try require((1...Self.maxUses).contains(uses) ? nil : "uses is between 1 and \(Self.maxUses)", at: "uses")
        }
    }
}

/// A named token as listed: never its secret.
public struct TokenView: Codable, Sendable, Equatable {
    public var id: TokenID
    public var name: String
    public var role: TokenRole
    public var state: TokenState
    public var createdAt: Date
    public var expiresAt: Date?
    public var revokedAt: Date?
    /// Enrollments made with it (join tokens).
    public var uses: Int
    /// Join tokens: how many enrollments it allows (nil: no limit).
    public var maxUses: Int?

    public init(id: TokenID, name: String, role: TokenRole, state: TokenState, createdAt: Date, expiresAt: Date? = nil,
                revokedAt: Date? = nil, uses: Int = 0, maxUses: Int? = nil) {
        self.id = id
        self.name = name
        self.role = role
        self.state = state
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.uses = uses
        self.maxUses = maxUses
    }

    enum CodingKeys: String, CodingKey {
        case id, name, role, state, uses
        case createdAt = "created_at"
        case expiresAt = "expires_at"
        case revokedAt = "revoked_at"
        case maxUses = "max_uses"
    }
}

/// The answer to `POST /v1/tokens`: the only time the secret is shown.
public struct CreatedToken: Codable, Sendable {
    public var token: TokenView
    /// The bearer secret (`pt_` and 64 hex digits). The master keeps only its SHA-256.
    public var secret: String

    public init(token: TokenView, secret: String) {
        self.token = token
        self.secret = secret
    }
}

/// `GET /v1/whoami`: who the bearer token says the caller is.
public struct WhoAmI: Codable, Sendable, Equatable {
    /// The token's name, `admin` for the bootstrap admin token, `join` for the bootstrap join
    /// token, or the agent's name.
    public var name: String
    /// `admin`, `submit`, `read`, `join` or `agent`.
    public var role: String
    /// The named token's id (nil for the bootstrap tokens and agents).
    public var token: TokenID?
    public var expiresAt: Date?

    public init(name: String, role: String, token: TokenID? = nil, expiresAt: Date? = nil) {
        self.name = name
        self.role = role
        self.token = token
        self.expiresAt = expiresAt
    }

    enum CodingKeys: String, CodingKey {
        case name, role, token
        case expiresAt = "expires_at"
    }
}

/// `POST /v1/agents/reset` (admin): lets a host enroll under `name` without the credential the
/// enrolled agent holds (its current credential stops working), or lets a deleted agent back.
public struct AgentResetRequest: Codable, Sendable {
    public var name: String
    public init(name: String) { self.name = name }

    enum CodingKeys: String, CodingKey, CaseIterable { case name }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        try decoder.validate(self)
    }
}

extension AgentResetRequest: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) { try require(FieldRules.agentName(name), at: "name") }
}

public struct AgentResetResult: Codable, Sendable, Equatable {
    public enum Outcome: String, Codable, Sendable {
        /// An enrolled agent: its credential no longer works; the next enrollment under its name needs none.
        case reset
        /// A deleted agent: it may enroll again.
        case allowed
    }
    public var name: String
    public var outcome: Outcome
    /// The enrolled agent that was reset.
    public var agent: AgentID?

    public init(name: String, outcome: Outcome, agent: AgentID? = nil) {
        self.name = name
        self.outcome = outcome
        self.agent = agent
    }
}

extension PaddockError {
    /// A call the caller's role does not allow: says which role it needs.
    public static func needsRole(_ needed: TokenRole, has: String) -> PaddockError {
        forbidden("this call needs the \(needed.rawValue) role; this token has role \(has)")
    }
    /// A token that was good once: expired, revoked or used up.
    public static func tokenNotValid(_ message: String) -> PaddockError {
        PaddockError(status: 401, code: "unauthorized", message: message)
    }
    /// Enrolling under a name an enrolled agent holds, without that agent's credential.
    public static func agentNameTaken(_ name: String, agent: AgentID) -> PaddockError {
        PaddockError(status: 409, code: "agent_name_taken", message:
            "agent \(name) (\(agent)) is enrolled: enrolling under its name needs its current credential "
            + "(kept in its work dir's agent-enrollment.json); if this host replaces it, an admin runs "
            + "`paddock agent reset \(name)` and the agent enrolls again")
    }
    /// Enrolling under the name of an agent an admin deleted.
    public static func agentDeleted(_ name: String) -> PaddockError {
        PaddockError(status: 409, code: "agent_deleted", message:
            "agent \(name) was deleted by an admin and stays out: to let it back, an admin runs `paddock agent reset \(name)`")
    }
}
