import Foundation
import PaddockMaster
import PaddockProtocol
import Testing

/// The store contract of named tokens and guarded enrollment, on SQLite and PostgreSQL.
extension StoreContractTests {
    @Test(arguments: Backend.allCases)
    func tokensAreKeptHashedAndFoundBySecret(_ backend: Backend) async throws {
        let fixture = try await StoreFixture.make(backend)
        let store = fixture.store
        let made = try await store.createToken(TokenRequest(name: "alice", role: .submit), secret: "pt_alice", now: now)
        #expect(made.name == "alice" && made.role == .submit && made.state == .active && made.expiresAt == nil)
        let join = try await store.createToken(TokenRequest(name: "rack", role: .join, uses: 1), secret: "pt_rack", now: now)
        #expect(join.maxUses == 1 && join.uses == 0)
        #expect(join.expiresAt.map { abs($0.timeIntervalSince(now) - TokenRequest.defaultJoinTTL) < 1 } == true)
        let brief = try await store.createToken(TokenRequest(name: "brief", role: .read, ttl: 60), secret: "pt_brief", now: now)

        #expect(try await store.token(secret: "pt_alice", now: now)?.id == made.id)
        #expect(try await store.token(secret: "pt_nobody", now: now) == nil)
        #expect(try await store.token(secret: "pt_brief", now: now)?.state == .active)
        #expect(try await store.token(secret: "pt_brief", now: now.addingTimeInterval(61))?.state == .expired)
        #expect(try await store.tokens(now: now).map(\.id) == [made.id, join.id, brief.id])

        let revoked = try await store.revokeToken(made.id, now: now)
        #expect(revoked.state == .revoked && revoked.revokedAt != nil)
        #expect(try await store.token(secret: "pt_alice", now: now)?.state == .revoked)
        #expect(try await store.revokeToken(made.id, now: later).revokedAt == revoked.revokedAt, "revoking twice keeps the first time")
        #expect(await status { _ = try await store.revokeToken(TokenID(rawValue: 999), now: now) } == 404)

        // Only hashes are stored.
        let stored = try await store.engine.read { db in
            try SQLRow.fetchAll(db, sql: "SELECT secret_hash FROM tokens ORDER BY id").map { $0["secret_hash"] as String }
        }
        #expect(stored == ["pt_alice", "pt_rack", "pt_brief"].map(SecretHash.hex))
    }

    @Test(arguments: Backend.allCases)
    func joinTokensCountTheirUsesInTheEnrollment(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let join = try await store.createToken(TokenRequest(name: "rack", role: .join, ttl: 60, uses: 2), secret: "pt_j", now: now)
        func enroll(_ name: String, at time: Date? = nil) async throws -> AgentID {
            try await store.enroll(EnrollRequest(name: name, resources: ResourceVector(cpus: 1), tags: [], version: "t"),
                                   credential: "cred-" + name, joinToken: join.id, now: time ?? now)
        }
        _ = try await enroll("a")
        // A refused enrollment (the name is held) spends no use.
        #expect(await status { _ = try await enroll("a") } == 409)
        _ = try await enroll("b")
        #expect(await status { _ = try await enroll("c") } == 401)
        #expect(try await store.token(secret: "pt_j", now: now)?.state == .usedUp)
        #expect(try await store.agents().map(\.name) == ["a", "b"])

        let timed = try await store.createToken(TokenRequest(name: "t", role: .join, ttl: 60), secret: "pt_t", now: now)
        #expect(await status {
            _ = try await store.enroll(EnrollRequest(name: "d", resources: ResourceVector(cpus: 1), tags: [], version: "t"),
                                       credential: "cred-d", joinToken: timed.id, now: now.addingTimeInterval(61))
        } == 401)
        _ = try await store.revokeToken(timed.id, now: now)
        #expect(await status {
            _ = try await store.enroll(EnrollRequest(name: "d", resources: ResourceVector(cpus: 1), tags: [], version: "t"),
                                       credential: "cred-d", joinToken: timed.id, now: now)
        } == 401)
    }

    @Test(arguments: Backend.allCases)
    func enrolledNamesAreGuardedAndResetsAndDeletionsAreAnAdmins(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let id = try await agent(store, "host")
        _ = try await job(store, 1)
        let lease = try #require(try await store.claim(ClaimOrder(agent: id, slots: 1, leaseUntil: later, now: now)).leases.first)
        func enroll(_ name: String, proof: String?, credential: String) async throws -> AgentID {
            try await store.enroll(EnrollRequest(name: name, resources: ResourceVector(cpus: 1), tags: [], version: "t",
                                                 credential: proof), credential: credential, now: now)
        }
        // Without the enrolled agent's credential: refused, nothing changes.
        #expect(await status { _ = try await enroll("host", proof: nil, credential: "thief") } == 409)
        #expect(await status { _ = try await enroll("host", proof: "wrong", credential: "thief") } == 409)
        #expect(try await store.authenticate(credential: "cred-host")?.id == id)
        #expect(try await store.authenticate(credential: "thief") == nil)
        #expect(try await store.task(lease.task, history: false).state == .assigned)
        // The credential is stored hashed and found by its hash.
        let stored = try await store.engine.read { db in
            try SQLRow.fetchOne(db, sql: "SELECT credential_hash FROM agents WHERE id = ?", arguments: [id.rawValue])
                .map { $0["credential_hash"] as String }
        }
        #expect(stored == SecretHash.hex("cred-host"))

        // An admin's reset: the old credential stops working; one enrollment needs no credential.
        #expect(try await store.resetAgent(name: "host", now: now) == AgentResetResult(name: "host", outcome: .reset, agent: id))
        #expect(try await store.authenticate(credential: "cred-host") == nil)
        #expect(try await enroll("host", proof: nil, credential: "new") == id)
        #expect(try await store.task(lease.task, history: false).state == .queued)
        #expect(await status { _ = try await enroll("host", proof: nil, credential: "again") } == 409)

        // A deleted agent stays out until an admin lets it back.
        try await store.forgetAgent(id, now: now)
        #expect(await status { _ = try await enroll("host", proof: "new", credential: "back") } == 409)
        #expect(try await store.resetAgent(name: "host", now: now).outcome == .allowed)
        let back = try await enroll("host", proof: nil, credential: "back")
        let found = try await store.authenticate(credential: "back")
        #expect(back != id && found?.id == back)
        #expect(await status { _ = try await store.resetAgent(name: "nobody", now: now) } == 404)
    }

    @Test(arguments: Backend.allCases)
    func ownersOfTasksAreTheirJobsOwners(_ backend: Backend) async throws {
        let store = try await StoreFixture.make(backend).store
        let alices = try await job(store, 2)
        let bobs = try await store.submit(JobSubmission(name: "b", tasks: [TaskSpec(name: "x", command: ["true"])]),
                                          owner: "bob", now: now)
        let ids = (alices.taskIDs ?? []) + (bobs.taskIDs ?? []) + [TaskID(rawValue: 999)]
        let owners = try await store.owners(of: ids)
        #expect(owners.count == 3)
        #expect(owners[ids[0]] == "alice" && owners[ids[1]] == "alice" && owners[ids[2]] == "bob")
        #expect(try await store.owners(of: []).isEmpty)
    }

    /// A store from before tokens (its credentials in clear) is migrated: the credentials are
    /// hashed in place, and the agents go on authenticating with them.
    @Test(arguments: Backend.allCases)
    func theMigrationHashesClearCredentialsInPlace(_ backend: Backend) async throws {
        let fixture = try await StoreFixture.make(backend)
        let id = try await agent(fixture.store, "old")
        // Back to the schema before the migration, with the credential as it was stored then.
        let forget = backend == .sqlite
            ? "DELETE FROM grdb_migrations WHERE identifier = 'v9-tokens-and-enrollment'"
            : "DELETE FROM paddock_migrations WHERE version = '4'"
        try await fixture.store.engine.write { db in
            for sql in ["DROP TABLE tokens", "DROP TABLE deleted_agents", "ALTER TABLE agents DROP COLUMN reset_at",
                        "ALTER TABLE agents RENAME COLUMN credential_hash TO credential", forget] {
                try db.execute(sql: sql)
            }
            try db.execute(sql: "UPDATE agents SET credential = ? WHERE id = ?", arguments: ["pa_clear-old", id.rawValue])
        }
        let migrated = try await fixture.second()
        #expect(try await migrated.authenticate(credential: "pa_clear-old")?.id == id)
        let stored = try await migrated.engine.read { db in
            try SQLRow.fetchAll(db, sql: "SELECT credential_hash FROM agents").map { $0["credential_hash"] as String }
        }
        #expect(stored == [SecretHash.hex("pa_clear-old")])
        #expect(try await migrated.tokens(now: now).isEmpty)
    }
}
