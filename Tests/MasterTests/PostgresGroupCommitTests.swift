import Foundation
import Logging
@testable import PaddockMaster
import PaddockProtocol
import PostgresNIO
import Synchronization
import Testing

/// Group commit on a real PostgreSQL: writes that queue while every lane is busy share one
/// transaction and one commit; each is answered after that commit; one write's failure or
/// collision is its own.
@Suite struct PostgresGroupCommitTests {
    /// A master's engine on a fresh database (4 connections, so 4 lanes), a scratch table, and a
    /// connection of the test's own that holds the advisory lock the lanes' first writes wait on.
    struct Setup {
        let engine: PostgresEngine
        let gate: PostgresConnection
        let logger: Logger

        static func make() async throws -> Setup {
            let fixture = try await StoreFixture.make(.postgres)
            var logger = Logger(label: "test.group-commit")
            logger.logLevel = .warning
            let location = try PostgresLocation(url: fixture.location + "?pool=4")
            let engine = try await PostgresEngine(location, logger: logger)
            _ = try await engine.write { db in
                try db.execute("CREATE TABLE written (name TEXT PRIMARY KEY)", [])
                try db.execute("CREATE SEQUENCE collisions", [])
            }
            let gate = try await PostgresConnections.connect(location, id: 99, logger: logger)
            _ = try await gate.query(PostgresQuery(unsafeSQL: "SELECT pg_advisory_lock(42)"), logger: logger).get()
            return Setup(engine: engine, gate: gate, logger: logger)
        }

        /// Occupies every lane with a write that waits for the gate, then returns once they all run.
        /// One at a time, each once the one before is running: a lane that finds two writes queued
        /// takes both into one transaction.
        func occupyLanes() async throws -> Task<Void, any Error> {
            let engine = self.engine
            var blocked: [Task<Void, any Error>] = []
            for lane in 0..<engine.group.lanes {
                blocked.append(Task {
                    try await engine.write { db in
                        try db.execute("SELECT pg_advisory_xact_lock(42)", [])
                        try db.execute("INSERT INTO written VALUES (?)", [.text("lane \(lane)")])
                    }
                })
                try await waitFor("lane \(lane) to run its blocked write") { try await waiting() == lane + 1 }
            }
            try await waitFor("every lane to be busy") { engine.group.load == (0, engine.group.lanes) }
            return Task { for task in blocked { try await task.value } }
        }

        /// Transactions waiting for the gate.
        func waiting() async throws -> Int {
            let rows = try await gate.query(PostgresQuery(unsafeSQL: """
                SELECT COUNT(*)::int8 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                """), logger: logger).get()
            return try rows.first?.decode(Int.self) ?? 0
        }

        func openGate() async throws {
            _ = try await gate.query(PostgresQuery(unsafeSQL: "SELECT pg_advisory_unlock(42)"), logger: logger).get()
        }

        func names() async throws -> Set<String> {
            Set(try await engine.read { db in try String.fetchAll(db, sql: "SELECT name FROM written") })
        }

        func close() async {
            try? await gate.close()
            await engine.close()
        }

        /// Runs `body` on a fresh set-up and closes it, however `body` ends.
        static func with(_ body: (Setup) async throws -> Void) async throws {
            let setup = try await make()
            do {
                try await body(setup)
            } catch {
                await setup.close()
                throw error
            }
            await setup.close()
        }
    }

    struct Refused: Error, Equatable { let name: String }

    @Test func writesQueuedBehindBusyLanesShareOneCommitAndAreAnsweredAfterIt() async throws {
        try await Setup.with { setup in
            let engine = setup.engine
            let blocked = try await setup.occupyLanes()
            let before = engine.group.committed
            // 50 writes queue behind the busy lanes: every tenth refuses (its own rows roll back).
            let writes = Task {
                try await withThrowingTaskGroup(of: (Int, Result<Int, Refused>).self) { group in
                    for n in 0..<50 {
                        group.addTask {
                            do {
                                let value = try await engine.write { db -> Int in
                                    try db.execute("INSERT INTO written VALUES (?)", [.text("w\(n)")])
                                    if n % 10 == 0 { throw Refused(name: "w\(n)") }
                                    return n * 2
                                }
                                return (n, .success(value))
                            } catch let refused as Refused {
                                return (n, .failure(refused))
                            }
                        }
                    }
                    return try await group.reduce(into: [Int: Result<Int, Refused>]()) { $0[$1.0] = $1.1 }
                }
            }
            try await waitFor("50 writes to queue") { engine.group.load.queued == 50 }
            try await setup.openGate()
            try await blocked.value
            let answers = try await writes.value

            for n in 0..<50 {
                #expect(answers[n] == (n % 10 == 0 ? .failure(Refused(name: "w\(n)")) : .success(n * 2)))
            }
            let names = try await setup.names()
            #expect(names == Set((0..<4).map { "lane \($0)" } + (0..<50).filter { $0 % 10 != 0 }.map { "w\($0)" }))
            // The 4 lanes' writes committed alone; the 45 that queued and stood, in one commit.
            let after = engine.group.committed
            #expect(after.writes - before.writes == 4 + 45)
            #expect(after.commits - before.commits == 4 + 1)
        }
    }

    @Test func aWriteThatCollidesInABatchRunsAgainAndCommitsOnce() async throws {
        try await Setup.with { setup in
            let engine = setup.engine
            let blocked = try await setup.occupyLanes()
            let runs = Counted(0)
            let writes = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await engine.write { db in
                            runs.withLock { $0 += 1 }
                            try db.execute("INSERT INTO written VALUES ('collider')", [])
                            // PostgreSQL's own serialization failure, the first time only (a sequence is
                            // not rolled back): the write is retried, as a collision with another master is.
                            try db.execute("""
                                DO $$ BEGIN IF nextval('collisions') = 1 THEN
                                    RAISE EXCEPTION 'collided' USING ERRCODE = '40001'; END IF; END $$
                                """, [])
                        }
                    }
                    for n in 0..<5 {
                        group.addTask {
                            try await engine.write { db in _ = try db.execute("INSERT INTO written VALUES (?)", [.text("w\(n)")]) }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            try await waitFor("6 writes to queue") { engine.group.load.queued == 6 }
            try await setup.openGate()
            try await blocked.value
            try await writes.value

            #expect(runs.withLock { $0 } == 2)
            #expect(try await setup.names() == Set((0..<4).map { "lane \($0)" } + (0..<5).map { "w\($0)" } + ["collider"]))
        }
    }

    @Test func aCommitThatCollidesRunsTheWholeBatchAgain() async throws {
        try await Setup.with { setup in
            let engine = setup.engine
            // A check made at commit, as the job counters are: the first commit that holds a row of the
            // batch's writes fails with a serialization failure.
            _ = try await engine.write { db in
                try db.execute("""
                    CREATE FUNCTION collide_once() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN
                        IF NEW.name LIKE 'w%' AND nextval('collisions') = 1 THEN
                            RAISE EXCEPTION 'collided' USING ERRCODE = '40001';
                        END IF;
                        RETURN NULL;
                    END $$
                    """, [])
                try db.execute("""
                    CREATE CONSTRAINT TRIGGER written_collides AFTER INSERT ON written
                        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION collide_once()
                    """, [])
            }
            let blocked = try await setup.occupyLanes()
            let runs = Counted([Int: Int]())
            let writes = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for n in 0..<8 {
                        group.addTask {
                            try await engine.write { db in
                                runs.withLock { $0[n, default: 0] += 1 }
                                try db.execute("INSERT INTO written VALUES (?)", [.text("w\(n)")])
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            try await waitFor("8 writes to queue") { engine.group.load.queued == 8 }
            try await setup.openGate()
            try await blocked.value
            try await writes.value

            // The 8 queued writes shared one transaction; its commit collided, so each ran again, and
            // every write is in once.
            #expect(try await setup.names() == Set((0..<4).map { "lane \($0)" } + (0..<8).map { "w\($0)" }))
            #expect(runs.withLock { $0 } == Dictionary(uniqueKeysWithValues: (0..<8).map { ($0, 2) }))
        }
    }

    /// Statements sent and not waited for (a run's start and finish in an exchange): a failure among
    /// them fails the write that sent them, in a batch too, and a later savepoint's rollback does not
    /// hide it.
    @Test func aSentStatementsFailureIsItsOwnWritesAndIsNeverHidden() async throws {
        try await Setup.with { setup in
            let engine = setup.engine
            let blocked = try await setup.occupyLanes()
            let runs = Counted(0)
            /// True when the write failed.
            @Sendable func fails(_ body: @escaping @Sendable (any SQLDatabase) throws -> Void) async -> Bool {
                do { try await engine.write(body) } catch { return true }
                return false
            }
            let writes = Task {
                try await withThrowingTaskGroup(of: (String, Bool).self) { group in
                    // Sends a failing statement and returns: the write's own settling finds it.
                    group.addTask {
                        let failed = await fails { db in
                            try db.send("INSERT INTO written VALUES ('sent')", [])
                            try db.send("SELECT 1 / 0", [])
                        }
                        return ("sent", failed)
                    }
                    // The failure in one savepoint, a refusal in the next: rolling back to the second
                    // must not roll back the first's instead and answer as if it had applied.
                    group.addTask {
                        let failed = await fails { db in
                            try db.savepoint {
                                try db.send("INSERT INTO written VALUES ('first part')", [])
                                try db.send("SELECT 1 / 0", [])
                            }
                            do {
                                try db.savepoint { throw Refused(name: "second part") }
                            } catch is Refused {}
                        }
                        return ("parts", failed)
                    }
                    // A collision among its sent statements, then a refusal of its own: the collision is
                    // the cause, so the write runs again (and, not colliding the second time, is refused).
                    group.addTask {
                        let failed = await fails { db in
                            runs.withLock { $0 += 1 }
                            try db.send("""
                                DO $$ BEGIN IF nextval('collisions') = 1 THEN
                                    RAISE EXCEPTION 'collided' USING ERRCODE = '40001'; END IF; END $$
                                """, [])
                            throw Refused(name: "after a collision")
                        }
                        return ("collided", failed)
                    }
                    for n in 0..<3 {
                        group.addTask {
                            let failed = await fails { db in
                                try db.send("INSERT INTO written VALUES (?)", [.text("w\(n)")])
                            }
                            return ("w\(n)", failed)
                        }
                    }
                    return try await group.reduce(into: [String: Bool]()) { $0[$1.0] = $1.1 }
                }
            }
            try await waitFor("6 writes to queue") { engine.group.load.queued == 6 }
            try await setup.openGate()
            try await blocked.value
            let failed = try await writes.value
            #expect(failed == ["sent": true, "parts": true, "collided": true, "w0": false, "w1": false, "w2": false])
            #expect(runs.withLock { $0 } == 2)
            #expect(try await setup.names() == Set((0..<4).map { "lane \($0)" } + (0..<3).map { "w\($0)" }))
        }
    }
}

/// The order a batch runs its writes in (no database needed).
@Suite struct GroupCommitOrderTests {
    @Test func aBatchRunsTheWritesThatLockAnAgentInTheirAgentsOrderThenTheRest() {
        func pending(_ agent: Int64?, _ arrival: Int) -> PostgresGroupCommit.Pending {
            PostgresGroupCommit.Pending(attempt: { _ in {} }, fail: { _ in }, agent: agent, conflicts: arrival)
        }
        let batch = [pending(3, 0), pending(nil, 1), pending(1, 2), pending(3, 3), pending(2, 4), pending(nil, 5)]
        let ordered = PostgresGroupCommit.ordered(batch)
        // Agents ascending (one agent's writes in the order they came), then the others as they came.
        #expect(ordered.map(\.agent) == [1, 2, 3, 3, nil, nil])
        #expect(ordered.map(\.conflicts) == [2, 4, 0, 3, 1, 5])
    }
}

/// A value the writes' bodies change from the lanes' threads.
private final class Counted<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { value.withLock { body(&$0) } }
}

/// Polls `condition` every 10 ms for up to 60 s (a generous bound for a busy machine).
private func waitFor(_ what: String, _ condition: @Sendable () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(60)
    while !(try await condition()) {
        guard ContinuousClock.now < deadline else {
            Issue.record("timed out waiting for \(what)")
            throw CancellationError()
        }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// A master that added many tasks refreshes PostgreSQL's planner statistics itself (the claim's plan
/// follows them; autovacuum would only after its nap).
@Suite struct PostgresStatisticsTests {
    @Test func aLargeSubmissionHasTheTablesClaimsReadAnalysed() async throws {
        let fixture = try await StoreFixture.make(.postgres)
        let store = fixture.store
        @Sendable func analysed() async throws -> Bool {
            try await store.engine.read { db in
                try Bool.fetchOne(db, sql: "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'tasks'")
                    ?? false
            }
        }
        // A small submission does not.
        _ = try await store.submit(JobSubmission(name: "small", tasks: [TaskSpec(name: "a", command: ["true"])]),
                                   owner: "alice", now: Date())
        #expect(try await analysed() == false)
        let tasks = (0..<PostgresEngine.refreshAfter.tasks).map { TaskSpec(name: "t\($0)", command: ["true"]) }
        _ = try await store.submit(JobSubmission(name: "large", tasks: tasks), owner: "alice", now: Date())
        try await waitFor("tasks to be analysed") { try await analysed() }
    }
}
