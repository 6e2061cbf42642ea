import Foundation
import GRDB
@testable import PaddockMaster
import PaddockProtocol
import Synchronization
import Testing

/// The statements a task's life runs on SQLite find their rows through indexes: none reads a table
/// that grows with the farm's history from end to end, and one exchange costs as many steps with a
/// long history as with a short one. A statement that reads the history costs in proportion to
/// every task ever submitted, and most of these run inside the one writer, where every request
/// waits for it.
@Suite struct QueryPlanTests {
    /// The tables whose size is the farm's history (tasks, their events, dependencies and logs).
    static let growing: Set<String> = ["tasks", "task_events", "task_deps", "job_deps", "log_chunks", "task_logs"]

    /// Indexes a statement may read end to end: they hold only what is live, not the history.
    static let bounded: [String: String] = [
        "tasks_held": "the leases agents hold now",
        "tasks_lease": "the leases agents hold now",
        "tasks_ready": "the queue, read in its order under a LIMIT (the claim's window)",
    ]

    /// Statements allowed to scan, each with why.
    static let allowed: [String: String] = [
        "SELECT state, COUNT(*) AS n FROM tasks GROUP BY state":
            "the tally's count, once at a master's start, on a reader",
    ]

    /// Every statement seen while a task's life runs through the HTTP API (enroll, submit, exchanges
    /// with claims, prefetch, starts, logs, progress, finishes, a failure and its retry, a
    /// heartbeat, a dependent task and a dependent job, a cancel, reads of jobs, tasks and logs) and
    /// the lease sweeper: its plan searches, or scans only a small table or a `bounded` index.
    @Test func aTaskLifeAndTheSweepScanNoGrowingTable() async throws {
        let seen = Mutex<Set<String>>([])
        let master = try TestMaster(leaseTimeout: 30, statements: { run in _ = seen.withLock { $0.insert(run.sql) } })
        try await master.test { client in
            // From here: the schema's migrations ran before.
            seen.withLock { $0.removeAll() }
            let (agent, credential) = try await client.enroll("a", cpus: 2)
            // The last task waits for the first: a finish that readies a dependent.
            var graph = echoJob("first", tasks: 6)
            graph.tasks[5].dependsOn = [graph.tasks[0].name]
            let first = try await client.submit(graph)
            var after = echoJob("after", tasks: 1)
            after.after = [first.id]
            let second = try await client.submit(after)

            var claim = ClaimRequest(slots: 2, wait: 0, prefetch: 2, capacity: 2)
            var answer = try await client.exchange(agent, credential, ExchangeRequest(
                claim: claim, talkback: TalkbackPoll(after: 0)))
            #expect(answer.leases.count == 4)
            var failedOnce = false
            var rounds = 0
            while !answer.leases.isEmpty && rounds < 20 {
                rounds += 1
                let running = answer.leases.filter { !$0.prefetched }
                let started = answer.leases.filter(\.prefetched).map(\.held)
                var finished: [ExchangeFinish] = []
                for lease in running {
                    let fail = !failedOnce
                    failedOnce = true
                    finished.append(ExchangeFinish(task: lease.task, report: FinishReport(
                        epoch: lease.epoch, outcome: fail ? .failed : .succeeded, exitCode: fail ? 1 : 0)))
                }
                let logs = running.map { ExchangeLog(task: $0.task, epoch: $0.epoch, offset: 0, data: Data("frame\n".utf8)) }
                let progress = running.map { ExchangeProgress(task: $0.task, epoch: $0.epoch, progress: 0.5) }
                claim.prefetch = rounds < 3 ? 2 : 0
                answer = try await client.exchange(agent, credential, ExchangeRequest(
                    started: started, logs: logs, progress: progress, finished: finished, claim: claim))
                // Prefetched leases confirmed started above are running now: renewed, then finished.
                if !started.isEmpty {
                    let heartbeat = try await client.send(.put, APIPath.heartbeat(agent), token: credential,
                                                          json: HeartbeatRequest(held: started))
                    #expect(heartbeat.status == 200)
                    let done = started.map { ExchangeFinish(task: $0.task, report: FinishReport(
                        epoch: $0.epoch, outcome: .succeeded, exitCode: 0)) }
                    let more = try await client.exchange(agent, credential, ExchangeRequest(finished: done, claim: claim))
                    answer.leases += more.leases
                }
            }
            #expect(try await client.job(first.id).state == .succeeded)
            #expect(try await client.job(second.id).state == .succeeded)
            #expect(try await client.send(.get, "/v1/jobs").status == 200)
            let someTask = try #require(try await client.send(.get, "/v1/tasks?job=\(first.id)").decode(Page<TaskView>.self).items.first)
            #expect(try await client.send(.get, APIPath.taskLogs(someTask.id)).status == 200)
            let cancelled = try await client.submit(echoJob("cancelled", tasks: 3))
            #expect(try await client.send(.post, "/v1/jobs/\(cancelled.id)/cancel").status == 200)
            #expect(try await client.send(.get, "/v1/master").status == 200)

            // A lease left to expire, then the sweep that requeues it.
            _ = try await client.submit(echoJob("expiring", tasks: 1))
            let held = try await client.exchange(agent, credential, ExchangeRequest(claim: ClaimRequest(slots: 1, wait: 0)))
            #expect(held.leases.count == 1)
            let later = Date().addingTimeInterval(3600)
            let swept = try await master.master.store.sweep(now: later, silentSince: later.addingTimeInterval(-30))
            #expect(swept.tasksRequeued == 1)

            let statements = seen.withLock { $0 }.filter(Self.isQuery).sorted()
            #expect(statements.count > 20, "the trace saw \(statements.count) statements")
            // A connection of its own: SQLite reads NULL for each parameter left unbound, and plans of the
            // store's statements do not depend on argument values (the partial indexes' conditions
            // are literals).
            let reader = try DatabaseQueue(path: master.dir + "/paddock.sqlite")
            let scans = try await reader.read { db in
                try statements.filter { Self.allowed[$0] == nil }.compactMap { sql -> String? in
                    let explain = try db.makeStatement(sql: "EXPLAIN QUERY PLAN " + sql)
                    explain.setUncheckedArguments([])
                    let bad = try Row.fetchAll(explain).map { $0["detail"] as String }
                        .filter { Self.scansHistory($0, in: sql) }
                    return bad.isEmpty ? nil : "\(sql)\n  → \(bad.joined(separator: "; "))"
                }
            }
            #expect(scans.isEmpty, "statements that scan a table growing with the farm:\n\(scans.joined(separator: "\n"))")
        }
    }

    /// One exchange that reports two tasks finished and claims two more costs SQLite about the same
    /// number of steps with 40 tasks in the history as with 100 times more: in a job of 40 (or
    /// 4 000) tasks that another job waits for, after a job as big has run. Steps, not time: the
    /// count is SQLite's own, the same on a busy machine. A statement that read the job's tasks,
    /// the queue or the history would add thousands.
    @Test func aFinishAndClaimCostsTheSameWithAHundredTimesTheHistory() async throws {
        let small = try await Self.exchangeSteps(tasks: 40)
        let large = try await Self.exchangeSteps(tasks: 4000)
        #expect(large.steps <= small.steps * 3 / 2 + 100,
                "\(small.steps) steps with 40 tasks, \(large.steps) with 4 000; the largest statements:\n\(large.top)")
    }

    /// The steps of the measured exchange, and its most expensive statements.
    static func exchangeSteps(tasks: Int) async throws -> (steps: Int, top: String) {
        let recording = Mutex<[StatementRun]?>(nil)
        let master = try TestMaster(statements: { run in recording.withLock { $0?.append(run) } })
        return try await master.test { client in
            let (agent, credential) = try await client.enroll("a", cpus: 64)
            let wide = ClaimRequest(slots: 64, wait: 0)
            // The history: a job as big, run to its end.
            _ = try await client.submit(echoJob("history", tasks: tasks, cpus: 1))
            var leases = try await client.exchange(agent, credential, ExchangeRequest(claim: wide)).leases
            while !leases.isEmpty {
                leases = try await client.exchange(agent, credential, ExchangeRequest(
                    finished: leases.map(Self.success), claim: wide)).leases
            }
            let waited = try await client.submit(echoJob("waited", tasks: tasks, cpus: 1))
            var after = echoJob("after")
            after.after = [waited.id]
            _ = try await client.submit(after)
            let two = ClaimRequest(slots: 2, wait: 0, capacity: 2)
            let first = try await client.exchange(agent, credential, ExchangeRequest(claim: two)).leases
            #expect(first.count == 2)

            recording.withLock { $0 = [] }
            let next = try await client.exchange(agent, credential, ExchangeRequest(finished: first.map(Self.success), claim: two))
            let runs = recording.withLock { runs in defer { runs = nil }; return runs ?? [] }
            #expect(next.leases.count == 2 && next.refused.isEmpty)
            #expect(try await client.job(waited.id).counts[.succeeded] == 2)
            let top = runs.sorted { $0.steps > $1.steps }.prefix(3).map { "\($0.steps): \($0.sql)" }.joined(separator: "\n")
            return (runs.reduce(0) { $0 + $1.steps }, top)
        }
    }

    static func success(_ lease: TaskLease) -> ExchangeFinish {
        ExchangeFinish(task: lease.task, report: FinishReport(epoch: lease.epoch, outcome: .succeeded, exitCode: 0))
    }

    /// A plan line that reads a growing table (named, or by its alias in `sql`) end to end, other than
    /// through a `bounded` index.
    static func scansHistory(_ line: String, in sql: String) -> Bool {
        let words = line.split(separator: " ").map(String.init)
        guard words.first == "SCAN", words.count > 1 else { return false }
        if let index = words.firstIndex(of: "INDEX"), index + 1 < words.count, bounded[words[index + 1]] != nil {
            return false
        }
        return growing.contains(table(named: words[1], in: sql))
    }

    /// The table `name` stands for in `sql`: itself, or the table it aliases (`FROM tasks t`).
    static func table(named name: String, in sql: String) -> String {
        let words = sql.split(whereSeparator: { $0.isWhitespace || $0 == "," || $0 == "(" || $0 == ")" }).map(String.init)
        for (offset, word) in words.enumerated() where offset + 1 < words.count && growing.contains(word) {
            let next = words[offset + 1].uppercased() == "AS" && offset + 2 < words.count ? words[offset + 2] : words[offset + 1]
            if next == name { return word }
        }
        return name
    }

    /// The store's own statements, not transaction control or settings (they have no plan).
    static func isQuery(_ sql: String) -> Bool {
        let head = sql.prefix(12).uppercased()
        return !sql.hasPrefix("--") && !["BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PRAGMA"]
            .contains(where: { head.hasPrefix($0) })
    }
}
