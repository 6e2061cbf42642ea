import Foundation
import Hummingbird
import PaddockMaster
import PaddockProtocol
import Testing

/// Named tokens with roles, and enrollment that cannot be hijacked (issue 16), through the
/// master's routes on a real SQLite store.
@Suite struct TokenTests {
    typealias Client = TestMaster.Client

    static func create(_ client: Client, _ name: String, _ role: TokenRole, ttl: Double? = nil, uses: Int? = nil) async throws
        -> CreatedToken {
        let reply = try await client.send(.post, "/v1/tokens", json: TokenRequest(name: name, role: role, ttl: ttl, uses: uses))
        #expect(reply.status == 201, "\(String(decoding: reply.body, as: UTF8.self))")
        return try reply.decode(CreatedToken.self)
    }

    static func enroll(_ client: Client, _ name: String, token: String, credential: String? = nil) async throws
        -> Client.Reply {
        try await client.send(.post, "/v1/agents", token: token, json: EnrollRequest(
            name: name, resources: ResourceVector(cpus: 4, ram: 8 << 30), tags: [], version: "test", credential: credential))
    }

    @Test func aReadTokenSeesEverythingAndChangesNothing() async throws {
        try await TestMaster().test { client in
            let read = try await Self.create(client, "viewer", .read).secret
            #expect(read.hasPrefix("pt_") && read.count == 67)
            let job = try await client.submit(echoJob())
            let task = try #require(job.taskIDs?.first)
            let (agent, _) = try await client.enroll("host")
            for path in ["/v1/jobs", "/v1/jobs/\(job.id)", "/v1/tasks?job=\(job.id)", "/v1/tasks/\(task)", "/v1/agents",
                         "/v1/agents/\(agent)", "/v1/master", "/v1/throughput", "/v1/jobs/\(job.id)/graph"] {
                #expect(try await client.send(.get, path, token: read).status == 200, "\(path)")
            }
            let cancel = try await client.send(.post, "/v1/jobs/\(job.id)/cancel", token: read)
            #expect(cancel.status == 403)
            #expect(cancel.error?.message == "this call needs the submit role; this token has role read")
            #expect(try await client.send(.post, "/v1/tasks/\(task)/cancel", token: read).status == 403)
            #expect(try await client.send(.post, "/v1/jobs", token: read, json: echoJob()).status == 403)
            let drain = try await client.send(.patch, "/v1/agents/\(agent)", token: read, json: AgentPatch(drain: true))
            #expect(drain.status == 403 && drain.error?.message.contains("needs the admin role") == true)
            let tokens = try await client.send(.get, "/v1/tokens", token: read)
            #expect(tokens.status == 403 && tokens.error?.message == "this call needs the admin role; this token has role read")
            #expect(try await client.job(job.id).state == .queued)
            let who = try await client.send(.get, "/v1/whoami", token: read).decode(WhoAmI.self)
            #expect(who.name == "viewer" && who.role == "read" && who.token != nil)
        }
    }

    @Test func aSubmitTokenOwnsWhatItSubmitsAndControlsOnlyThat() async throws {
        try await TestMaster().test { client in
            let alice = try await Self.create(client, "alice", .submit).secret
            // The owner is the token's name, whatever the submission says.
            var spoofed = echoJob("mine", tasks: 2)
            spoofed.owner = "bob"
            let submitted = try await client.send(.post, "/v1/jobs", token: alice, json: spoofed)
            #expect(submitted.status == 201)
            let mine = try submitted.decode(JobView.self)
            #expect(mine.owner == "alice")
            #expect(mine.warnings.contains { $0.contains("owner 'bob' was ignored") } == true)
            // The bootstrap admin token keeps today's behaviour: the owner the submission gives.
            var bobs = echoJob("theirs", tasks: 2)
            bobs.owner = "bob"
            let theirs = try await client.submit(bobs)
            #expect(theirs.owner == "bob")
            let theirTask = try #require(theirs.taskIDs?.first)
            let myTasks = try #require(mine.taskIDs)

            let refused = try await client.send(.post, "/v1/jobs/\(theirs.id)/cancel", token: alice)
            #expect(refused.status == 403)
            #expect(refused.error?.message.contains("needs the admin role, or the submit role as the owner of job \(theirs.id)") == true)
            for (method, path) in [(HTTPRequest.Method.post, "/v1/jobs/\(theirs.id)/pause"), (.post, "/v1/jobs/\(theirs.id)/retry"),
                                   (.delete, "/v1/jobs/\(theirs.id)"), (.post, "/v1/tasks/\(theirTask)/cancel")] {
                #expect(try await client.send(method, path, token: alice).status == 403, "\(method) \(path)")
            }
            let bulk = try await client.send(.patch, "/v1/tasks", token: alice,
                                             json: TaskBulkPatch(ids: myTasks + [theirTask], state: .cancelled))
            #expect(bulk.status == 403)
            #expect(try await client.job(theirs.id).state == .queued)
            #expect(try await client.job(mine.id).state == .queued, "an all-or-nothing patch refused changed nothing")

            // Its own job it controls.
            #expect(try await client.send(.post, "/v1/jobs/\(mine.id)/pause", token: alice).status == 200)
            #expect(try await client.send(.post, "/v1/jobs/\(mine.id)/resume", token: alice).status == 200)
            #expect(try await client.send(.post, "/v1/tasks/\(myTasks[0])/cancel", token: alice).status == 200)
            #expect(try await client.send(.post, "/v1/jobs/\(mine.id)/cancel", token: alice).status == 200)
            #expect(try await client.job(mine.id).state == .cancelled)

            // Agents and tokens are an admin's.
            let (agent, _) = try await client.enroll("host")
            let drain = try await client.send(.patch, "/v1/agents/\(agent)", token: alice, json: AgentPatch(drain: true))
            #expect(drain.status == 403)
            #expect(drain.error?.message == "this call needs the admin role; this token has role submit")
            let command = try await client.send(.post, "/v1/agents/\(agent)/commands", token: alice,
                                                json: CommandRequest(kind: .drain))
            #expect(command.status == 403)
            #expect(try await client.send(.post, "/v1/tokens", token: alice,
                                          json: TokenRequest(name: "x", role: .admin)).status == 403)
            #expect(try await client.send(.post, "/v1/agents/reset", token: alice,
                                          json: AgentResetRequest(name: "host")).status == 403)
            #expect(try await client.send(.get, "/v1/agents/\(agent)", token: alice).decode(AgentView.self).state == .online)
        }
    }

    @Test func revokedAndExpiredTokensAre401() async throws {
        try await TestMaster().test { client in
            let created = try await Self.create(client, "ci", .submit)
            #expect(try await client.send(.get, "/v1/whoami", token: created.secret).status == 200)
            let revoked = try await client.send(.delete, "/v1/tokens/\(created.token.id)")
            let revokedView = try revoked.decode(TokenView.self)
            #expect(revoked.status == 200 && revokedView.state == .revoked)
            let after = try await client.send(.get, "/v1/jobs", token: created.secret)
            #expect(after.status == 401 && after.error?.message.contains("was revoked") == true)

            let brief = try await Self.create(client, "brief", .read, ttl: 1)
            #expect(brief.token.expiresAt != nil)
            var last = 0
            try await eventuallyTrue("the token expires", timeout: 30) {
                last = try await client.send(.get, "/v1/jobs", token: brief.secret).status
                return last == 401
            }
            let expired = try await client.send(.get, "/v1/jobs", token: brief.secret)
            #expect(expired.error?.message.contains("expired") == true)

            #expect(try await client.send(.get, "/v1/jobs", token: "pt_" + String(repeating: "0", count: 64)).status == 401)
            let list = try await client.send(.get, "/v1/tokens")
            let tokens = try list.decode(Page<TokenView>.self).items
            #expect(tokens.map(\.state) == [.revoked, .expired])
            // Never a secret in a listing.
            let text = String(decoding: list.body, as: UTF8.self)
            #expect(!text.contains(created.secret) && !text.contains(brief.secret) && !text.contains("pt_"))
            #expect(try await client.send(.delete, "/v1/tokens/k999").status == 404)
        }
    }

    @Test func badTokenRequestsAreClear400s() async throws {
        try await TestMaster().test { client in
            for body in [#"{"name": "x", "role": "root"}"#, #"{"name": "a b", "role": "read"}"#,
                         #"{"name": "x", "role": "read", "uses": 3}"#, #"{"name": "x", "role": "join", "uses": 0}"#,
                         #"{"name": "x", "role": "read", "ttl": -1}"#, #"{"name": "x", "role": "read", "secret": "mine"}"#] {
                let reply = try await client.send(.post, "/v1/tokens", body: Data(body.utf8))
                #expect(reply.status == 400, "\(body)")
                #expect(reply.error != nil, "\(body)")
            }
        }
    }

    @Test func aJoinTokenExpiresAndIsUsedUp() async throws {
        try await TestMaster().test { client in
            let join = try await Self.create(client, "rack-4", .join, uses: 2)
            #expect(join.token.expiresAt != nil, "a join token lasts a day unless told otherwise")
            // A join token enrolls and nothing else.
            let read = try await client.send(.get, "/v1/jobs", token: join.secret)
            #expect(read.status == 403 && read.error?.message == "this call needs the read role; this token has role join")
            #expect(try await Self.enroll(client, "n1", token: join.secret).status == 201)
            #expect(try await Self.enroll(client, "n2", token: join.secret).status == 201)
            let third = try await Self.enroll(client, "n3", token: join.secret)
            #expect(third.status == 401 && third.error?.message.contains("used 2 times") == true)
            let listed = try await client.send(.get, "/v1/tokens").decode(Page<TokenView>.self).items
            #expect(listed.first?.state == .usedUp && listed.first?.uses == 2)

            let brief = try await Self.create(client, "brief", .join, ttl: 1)
            try await eventuallyTrue("the join token expires", timeout: 30) {
                try await client.send(.get, "/v1/tokens").decode(Page<TokenView>.self).items.last?.state == .expired
            }
            let late = try await Self.enroll(client, "n4", token: brief.secret)
            #expect(late.status == 401 && late.error?.message.contains("expired") == true)
            let revoked = try await Self.create(client, "gone", .join)
            _ = try await client.send(.delete, "/v1/tokens/\(revoked.token.id)")
            #expect(try await Self.enroll(client, "n5", token: revoked.secret).status == 401)
            let names = try await client.send(.get, "/v1/agents").decode(Page<AgentView>.self).items.map(\.name)
            #expect(names == ["n1", "n2"])
            // Other roles cannot enroll; the bootstrap join token still can.
            let reader = try await Self.create(client, "viewer", .read)
            let refused = try await Self.enroll(client, "n6", token: reader.secret)
            #expect(refused.status == 403 && refused.error?.message == "this call needs the join role; this token has role read")
            #expect(try await Self.enroll(client, "n6", token: TestMaster.join).status == 201)
        }
    }

    @Test func enrollingUnderAnEnrolledNameNeedsItsCredentialOrAReset() async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("render-01")
            let job = try await client.submit(echoJob())
            let lease = try #require(try await client.claim(agent, credential).first)

            let hijack = try await Self.enroll(client, "render-01", token: TestMaster.join)
            #expect(hijack.status == 409 && hijack.error?.code == "agent_name_taken")
            #expect(hijack.error?.message.contains("paddock agent reset render-01") == true)
            let wrong = try await Self.enroll(client, "render-01", token: TestMaster.join, credential: "pa_" + String(repeating: "1", count: 64))
            #expect(wrong.status == 409)
            // The live agent keeps its credential and its lease.
            #expect(try await client.send(.get, "/v1/agents/\(agent)", token: credential).status == 200)
            let held = try await client.task(lease.task)
            #expect(held.state == .assigned && held.agent == agent && held.epoch == lease.epoch)

            // The agent itself (its current credential) may enroll again: a new credential, its leases requeued.
            let again = try await Self.enroll(client, "render-01", token: TestMaster.join, credential: credential)
            #expect(again.status == 201)
            let fresh = try again.decode(EnrollResponse.self)
            #expect(fresh.id == agent && fresh.credential != credential)
            #expect(try await client.send(.get, "/v1/agents/\(agent)", token: credential).status == 401)
            #expect(try await client.task(lease.task).state == .queued)

            // An admin's reset: the enrolled credential stops working and the next enrollment needs none.
            let reset = try await client.send(.post, "/v1/agents/reset", json: AgentResetRequest(name: "render-01"))
            let resetResult = try reset.decode(AgentResetResult.self)
            #expect(reset.status == 200 && resetResult == AgentResetResult(name: "render-01", outcome: .reset, agent: agent))
            #expect(try await client.send(.get, "/v1/agents/\(agent)", token: fresh.credential).status == 401)
            let replaced = try await Self.enroll(client, "render-01", token: TestMaster.join)
            #expect(replaced.status == 201)
            #expect(try replaced.decode(EnrollResponse.self).id == agent)
            // Once: the reset is used up by that enrollment.
            #expect(try await Self.enroll(client, "render-01", token: TestMaster.join).status == 409)
            #expect(try await client.send(.post, "/v1/agents/reset", json: AgentResetRequest(name: "nobody")).status == 404)
            _ = job
        }
    }

    /// The exchange takes an agent's credential from the master's cache once it was checked, and
    /// checks it again in its own transaction: a credential replaced, reset or deleted since is 401
    /// at the next exchange all the same.
    @Test func anExchangeWithACredentialNoLongerValidIsRefusedThoughItWasCached() async throws {
        try await TestMaster().test { client in
            func exchange(_ agent: AgentID, _ credential: String) async throws -> Client.Reply {
                try await client.send(.post, "/v1/agents/\(agent)/exchange", token: credential, json: ExchangeRequest())
            }
            let (agent, credential) = try await client.enroll("render-01")
            #expect(try await exchange(agent, credential).status == 200)
            #expect(try await exchange(agent, credential).status == 200, "from the cache")
            let (other, otherCredential) = try await client.enroll("render-02")
            #expect(try await exchange(other, otherCredential).status == 200)
            #expect(try await exchange(other, credential).status == 403, "an agent exchanges only for itself")

            // Enrolled again: a new credential; the old one is refused at once.
            let again = try await Self.enroll(client, "render-01", token: TestMaster.join, credential: credential)
            let fresh = try again.decode(EnrollResponse.self)
            let refused = try await exchange(agent, credential)
            #expect(refused.status == 401, "\(String(decoding: refused.body, as: UTF8.self))")
            #expect(try await exchange(agent, credential).status == 401, "and stays refused")
            #expect(try await exchange(agent, fresh.credential).status == 200)
            #expect(try await exchange(agent, fresh.credential).status == 200)

            // An admin's reset.
            #expect(try await client.send(.post, "/v1/agents/reset", json: AgentResetRequest(name: "render-01")).status == 200)
            #expect(try await exchange(agent, fresh.credential).status == 401)

            // A deleted agent.
            #expect(try await client.send(.delete, "/v1/agents/\(other)").status == 204)
            #expect(try await exchange(other, otherCredential).status == 401)
        }
    }

    @Test func aDeletedAgentStaysOutUntilAnAdminLetsItBack() async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("old-host")
            #expect(try await client.send(.delete, "/v1/agents/\(agent)").status == 204)
            #expect(try await client.send(.get, "/v1/agents/\(agent)", token: credential).status == 401)
            for proof in [nil, credential] {
                let back = try await Self.enroll(client, "old-host", token: TestMaster.join, credential: proof)
                #expect(back.status == 409 && back.error?.code == "agent_deleted")
                #expect(back.error?.message.contains("paddock agent reset old-host") == true)
            }
            let allowed = try await client.send(.post, "/v1/agents/reset", json: AgentResetRequest(name: "old-host"))
            #expect(try allowed.decode(AgentResetResult.self).outcome == .allowed)
            #expect(try await Self.enroll(client, "old-host", token: TestMaster.join).status == 201)
        }
    }

    @Test func whoAmIAnswersEveryKindOfCaller() async throws {
        try await TestMaster().test { client in
            let admin = try await client.send(.get, "/v1/whoami").decode(WhoAmI.self)
            #expect(admin == WhoAmI(name: "admin", role: "admin"))
            let join = try await client.send(.get, "/v1/whoami", token: TestMaster.join).decode(WhoAmI.self)
            #expect(join.role == "join")
            let (_, credential) = try await client.enroll("host-7")
            #expect(try await client.send(.get, "/v1/whoami", token: credential).decode(WhoAmI.self)
                    == WhoAmI(name: "host-7", role: "agent"))
            let named = try await Self.create(client, "ops", .admin, ttl: 3600)
            let who = try await client.send(.get, "/v1/whoami", token: named.secret).decode(WhoAmI.self)
            #expect(who.name == "ops" && who.role == "admin" && who.token == named.token.id && who.expiresAt != nil)
            // A named admin token is an admin: it makes tokens.
            #expect(try await client.send(.post, "/v1/tokens", token: named.secret,
                                          json: TokenRequest(name: "ci", role: .submit)).status == 201)
            #expect(try await client.send(.get, "/v1/whoami", token: nil).status == 401)
        }
    }

    /// Neither a token's secret nor an agent's credential is in the database's files: only their hashes.
    @Test func secretsAreNotStoredInClear() async throws {
        let master = try TestMaster()
        let dir = master.dir
        let (secret, credential) = try await master.test { client in
            let secret = try await Self.create(client, "alice", .submit).secret
            let join = try await Self.create(client, "rack", .join, uses: 5).secret
            let reply = try await Self.enroll(client, "host", token: join)
            let credential = try reply.decode(EnrollResponse.self).credential
            // Still usable: looked up by hash.
            #expect(try await client.send(.get, "/v1/whoami", token: secret).status == 200)
            #expect(try await client.send(.get, "/v1/whoami", token: credential).status == 200)
            var files = Data()
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
                files.append(FileManager.default.contents(atPath: dir + "/" + name) ?? Data())
            }
            #expect(files.count > 4096, "the database's files were read")
            for clear in [secret, join, credential] {
                #expect(files.range(of: Data(clear.utf8)) == nil, "a secret is in the database in clear")
                #expect(files.range(of: Data(String(clear.dropFirst(3)).utf8)) == nil)
            }
            #expect(files.range(of: Data(SecretHash.hex(secret).utf8)) != nil, "its hash is what is stored")
            #expect(files.range(of: Data(SecretHash.hex(credential).utf8)) != nil)
            return (secret, credential)
        }
        #expect(!secret.isEmpty && !credential.isEmpty)
    }
}

/// Polls `condition` every 100 ms until it holds, or fails after `timeout` seconds.
func eventuallyTrue(_ what: String, timeout: Double, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    Issue.record("timed out after \(timeout)s waiting for \(what)")
}
