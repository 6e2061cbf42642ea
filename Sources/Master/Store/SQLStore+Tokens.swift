import Foundation
import PaddockProtocol

/// Named tokens: only the SHA-256 of each secret is stored, and tokens are looked up by it.
extension SQLStore {
    public func createToken(_ request: TokenRequest, secret: String, now: Date) async throws -> TokenView {
        let hash = SecretHash.hex(secret)
        let ttl = request.ttl ?? (request.role == .join ? TokenRequest.defaultJoinTTL : nil)
        let expires = ttl.map { now.timeIntervalSince1970 + $0 }
        return try await engine.write { db in
            guard let row = try SQLRow.fetchOne(db, sql: """
                INSERT INTO tokens (name, role, secret_hash, created_at, expires_at, max_uses) VALUES (?, ?, ?, ?, ?, ?)
                RETURNING *
                """, arguments: [request.name, request.role.rawValue, hash, now.timeIntervalSince1970, expires, request.uses])
            else { throw PaddockError.conflict("the token was not stored") }
            return try Self.tokenView(row, now: now)
        }
    }

    public func tokens(now: Date) async throws -> [TokenView] {
        try await engine.read { db in
            try SQLRow.fetchAll(db, sql: "SELECT * FROM tokens ORDER BY id").map { try Self.tokenView($0, now: now) }
        }
    }

    public func revokeToken(_ id: TokenID, now: Date) async throws -> TokenView {
        try await engine.write { db in
            try db.execute(sql: "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                           arguments: [now.timeIntervalSince1970, id.rawValue])
            guard let row = try SQLRow.fetchOne(db, sql: "SELECT * FROM tokens WHERE id = ?", arguments: [id.rawValue]) else {
                throw PaddockError.notFound("token \(id)")
            }
            return try Self.tokenView(row, now: now)
        }
    }

    public func token(secret: String, now: Date) async throws -> TokenView? {
        let hash = SecretHash.hex(secret)
        return try await engine.read { db in
            guard let row = try SQLRow.fetchOne(db, sql: "SELECT * FROM tokens WHERE secret_hash = ?", arguments: [hash]),
                  SecretHash.equal(row["secret_hash"], hash) else { return nil }
            return try Self.tokenView(row, now: now)
        }
    }

    /// Counts one enrollment against a join token, if it still allows one (in the enrollment's
    /// transaction: two hosts racing for the last use cannot both have it).
    static func useJoinToken(_ db: any SQLDatabase, _ id: TokenID, now: Date) throws {
        let used = try db.execute(sql: """
            UPDATE tokens SET uses = uses + 1
            WHERE id = ? AND role = 'join' AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)
                AND (max_uses IS NULL OR uses < max_uses)
            """, arguments: [id.rawValue, now.timeIntervalSince1970])
        guard used == 1 else {
            throw PaddockError.tokenNotValid("join token \(id) expired, was revoked or is used up: an admin makes a new one "
                                             + "(paddock token create --role join)")
        }
    }

    static func tokenView(_ row: SQLRow, now: Date) throws -> TokenView {
        let id = TokenID(rawValue: row["id"])
        guard let role = TokenRole(rawValue: row["role"]) else {
            throw PaddockError.conflict("token \(id) has an unknown role '\((row["role"] as String).prefix(20))'")
        }
        let expires = (row["expires_at"] as Double?).map(Date.init(timeIntervalSince1970:))
        let revoked = (row["revoked_at"] as Double?).map(Date.init(timeIntervalSince1970:))
        let uses: Int = row["uses"]
        let maxUses: Int? = row["max_uses"]
        let state: TokenState = if revoked != nil { .revoked }
            else if let expires, expires <= now { .expired }
            else if let maxUses, uses >= maxUses { .usedUp }
            else { .active }
        return TokenView(id: id, name: row["name"], role: role, state: state,
                         createdAt: Date(timeIntervalSince1970: row["created_at"]), expiresAt: expires, revokedAt: revoked,
                         uses: uses, maxUses: maxUses)
    }
}
