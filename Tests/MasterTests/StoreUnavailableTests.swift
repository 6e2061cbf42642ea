import Foundation
import Hummingbird
import Logging
import PaddockMaster
import PaddockProtocol
import Testing

/// A master cut off from its database answers 503 `unavailable` with `Retry-After` (never a 500),
/// its health check says so without hanging, and everything works again once the database is back.
@Suite struct StoreUnavailableTests {
    func expectUnavailable(_ reply: TestMaster.Client.Reply, _ what: String,
                           sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(reply.status == 503, "\(what): \(String(decoding: reply.body, as: UTF8.self))", sourceLocation: sourceLocation)
        #expect(reply.error?.code == "unavailable", "\(what)", sourceLocation: sourceLocation)
        #expect(reply.error?.message == "the database is unreachable; retry", "\(what)", sourceLocation: sourceLocation)
        #expect(reply.headers[.retryAfter] == "1", "\(what)", sourceLocation: sourceLocation)
        #expect(reply.headers[.contentType] == "application/json", "\(what)", sourceLocation: sourceLocation)
    }

    /// A master whose real store sits behind a network the test can cut.
    static func masterBehindANetwork(leaseTimeout: Double = 30) throws -> (TestMaster, UnreachableStore) {
        var network: UnreachableStore?
        let master = try TestMaster(leaseTimeout: leaseTimeout) { store in
            let wrapped = UnreachableStore(store)
            network = wrapped
            return wrapped
        }
        return (master, try #require(network))
    }

    @Test func databaseDownAnswers503AndRecovers() async throws {
        let (master, db) = try Self.masterBehindANetwork()
        try await master.test { client in
            let (agent, credential) = try await client.enroll("render-01")
            #expect(try await client.send(.get, "/healthz", token: nil).status == 200)

            db.cut = true
            expectUnavailable(try await client.send(.get, "/healthz", token: nil), "healthz")
            expectUnavailable(try await client.send(.post, "/v1/jobs", json: echoJob()), "submit")
            // The agent's credential cannot even be checked: still 503, not 401 (which would make it re-enroll).
            expectUnavailable(try await client.send(.post, "/v1/agents/\(agent)/claim", token: credential,
                                                    json: ClaimRequest(slots: 1, wait: 0)), "claim")
            expectUnavailable(try await client.send(.get, "/v1/jobs"), "list")
            #expect(master.master.stats.unhandledErrors == 0, "a database outage is no bug")

            db.cut = false
            let health = try await client.send(.get, "/healthz", token: nil)
            #expect(health.status == 200)
            #expect(health.json?["status"] as? String == "ok" && health.json?["store"] as? String == "sqlite")
            let job = try await client.submit(echoJob())
            #expect(try await client.claim(agent, credential).map(\.job) == [job.id])
        }
    }

    @Test func aHungDatabaseDoesNotHangTheHealthCheck() async throws {
        let (master, db) = try Self.masterBehindANetwork()
        try await master.test { client in
            db.hang = true
            let started = ContinuousClock.now
            let reply = try await client.send(.get, "/healthz", token: nil)
            let took = ContinuousClock.now - started
            expectUnavailable(reply, "hung healthz")
            // The deadline is 2 s and the hung call would take 300: the bound is loose because the
            // suites run in parallel on few cores, which delays timers.
            #expect(took >= .seconds(1.9) && took < .seconds(120), "answered after \(took)")
            db.hang = false
            #expect(try await client.send(.get, "/healthz", token: nil).status == 200)
        }
    }
}

/// A database outage longer than the lease timeout costs no work: heartbeats failed through no
/// fault of the agents, so the sweeper gives every lease its grace again before expiring any.
@Suite struct OutageGraceTests {
    @Test func leasesOutliveAnOutageLongerThanTheirTimeout() async throws {
        // The sweeper's grace gives back the outage less its 1 s allowance (`SQLStore.sweepAllowance`): a
        // lease with less than that left when the last sweep before the outage ran expires at the first
        // sweep after it. 5 s leases leave a busy machine 4 s between the claim and the outage.
        let (master, db) = try StoreUnavailableTests.masterBehindANetwork(leaseTimeout: 5)
        let sweeper = LeaseSweeper(store: master.master.store, config: master.master.config, claims: WakeSignal(), changes: WakeSignal(.changes), closing: [],
                                   logger: Logger(label: "test"))
        try await master.test { client in
            let (agent, credential) = try await client.enroll("render-01")
            let job = try await client.submit(echoJob())
            _ = try #require(try await client.claim(agent, credential).first?.task)  // leased: a sweep without the grace would requeue it
            let sweeping = Task { try await sweeper.run() }
            defer { sweeping.cancel() }
            db.cut = true
            try await Task.sleep(for: .seconds(6))  // the outage: longer than the lease, every heartbeat would have failed
            let before = db.sweeps.count
            #expect(db.sweeps.allSatisfy { $0 == SweepResult() }, "before the outage: \(db.sweeps)")
            db.cut = false
            // The first sweep after the outage comes after the grace: it requeues nothing and marks no
            // agent offline, however late it runs. (What follows is not looked at: this agent never
            // beats, so its lease and its presence run out a little later, as they should. Looked at
            // 600 ms on, with 1.5 s leases, they had on a busy machine.)
            try await eventuallyTrue("a sweep after the outage", timeout: 60) { db.sweeps.count > before }
            #expect(db.sweeps[before] == SweepResult(), "the first sweep after the outage: \(db.sweeps[before])")
            #expect(try await client.job(job.id).state != .failed)
        }
    }
}
