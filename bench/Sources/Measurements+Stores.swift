import Foundation
import PaddockProtocol
import PaddockTestSupport

/// The same farm on each store: one master on SQLite, one master on PostgreSQL, and three masters
/// sharing one PostgreSQL behind HAProxy (the shipped packaging/haproxy.cfg). PostgreSQL and HAProxy
/// are real throwaway servers (PaddockTestSupport), started here and stopped at the end.
extension Measurements {
    /// One of the compared setups.
    struct StoreSetup: Sendable {
        let label: String
        /// 0: SQLite (one master, --data); else that many masters on one PostgreSQL database.
        let postgresMasters: Int

        static let all = [
            StoreSetup(label: "1 master, SQLite", postgresMasters: 0),
            StoreSetup(label: "1 master, PostgreSQL", postgresMasters: 1),
            StoreSetup(label: "3 masters, PostgreSQL, HAProxy", postgresMasters: 3),
        ]
    }

    /// For each setup: claim latency by one simulated agent against a queue, then N × /bin/true as
    /// one job on real agents (submit → job done), then the same with a job after it, all through
    /// the URL agents are given (HAProxy's for several masters).
    static func stores(_ context: BenchContext) async throws -> [Figure] {
        // Fail before measuring anything when the servers are missing (CI installs them with
        // PADDOCK_TEST_DEPS=1 scripts/setup-debian.sh).
        guard PostgresServer.isAvailable else { throw BenchError(PostgresServer.unavailableReason) }
        guard HAProxyServer.isAvailable else { throw BenchError(HAProxyServer.unavailableReason) }
        let postgres = try await PostgresServer.start()
        context.log("    PostgreSQL \(postgres.binDir) on 127.0.0.1:\(postgres.port)")
        var figures: [Figure] = []
        do {
            for (index, setup) in StoreSetup.all.enumerated() {
                let store = setup.postgresMasters > 0 ? try postgres.createDatabase("bench_\(index)") : nil
                figures += try await storeFigures(context, setup, store: store)
            }
        } catch {
            postgres.terminate()
            throw error
        }
        try await postgres.stop()
        return figures
    }

    private static func storeFigures(_ context: BenchContext, _ setup: StoreSetup, store: String?) async throws -> [Figure] {
        let count = context.sizes.storeTasks
        let agents = context.sizes.storeAgents
        let slots = 4
        let queue = context.sizes.storeClaimQueue
        let warmup = 10
        let samples = context.sizes.claimSamples
        let tag = "stores-" + setup.label.lowercased().filter { $0.isLetter || $0.isNumber }
        return try await withFarm(context, tag) { farm in
            var proxy: HAProxyServer?
            defer { proxy?.stop() }
            if setup.postgresMasters <= 1 {
                try await farm.startMaster(store: store)
            } else {
                var ports: [Int] = []
                for index in 1...setup.postgresMasters {
                    ports.append(try await farm.startMaster(name: "master\(index)", store: store,
                                                            extra: ["--trusted-proxy", "127.0.0.1"]))
                }
                let frontend = try await HAProxyServer.start(masters: ports, tls: false)  // plain, as in earlier sittings
                proxy = frontend
                farm.route(through: frontend.port)
                try await until("HAProxy answers /healthz", timeout: 20) {
                    (try? await farm.admin.raw("GET", "/healthz")) != nil
                }
                // Masters are taken in by health checks (rise 2, 2 s apart as shipped): let all be in.
                try await Task.sleep(for: .milliseconds(4500))
                context.log("    HAProxy on \(frontend.url) in front of masters on \(ports.map(String.init).joined(separator: ", "))")
            }

            // Claim latency first, while no other agent claims (a real agent's pending long-poll would race
            // the simulated one for the head of the queue): one simulated agent, through the agents' URL.
            let admin = farm.admin
            let agent = try await SimulatedFleet.enroll(1, farm: farm, cpus: 64).agents[0]
            let queued = try await admin.submit(json: JobText.frames("queue", count: queue, command: ["true"]))
            try await agent.heartbeat()
            let claims = try await agent.timedClaims(warmup: warmup, samples: samples) { number in
                let view: JobView? = try? await admin.call("GET", APIPath.job(queued.id))
                return "claim \(number) got nothing; the queue job: \(view.map { "\($0.counts)" } ?? "?")"
            }
            // What is left of the queue must not reach the real agents.
            let _: JobView = try await admin.call("POST", APIPath.job(queued.id, "cancel"))

            // End to end: real agents, one job, submit → every task succeeded.
            for index in 1...agents { try await farm.startAgent("agent\(index)", slots: slots) }
            var unanswered = 0
            let seconds = try await timed {
                let job = try await admin.submit(json: JobText.frames("true", count: count, command: ["/bin/true"]))
                try await until("\(count) tasks succeeded", timeout: 600, every: 0.02) {
                    // A 502/503/504 (HAProxy with every master out of rotation, a master's database
                    // ping over its deadline) is waited out, as agents do; it is counted and shown.
                    let view: JobView
                    do { view = try await admin.call("GET", APIPath.job(job.id)) } catch let error as WireError
                        where [502, 503, 504].contains(error.status ?? 0) {
                        unanswered += 1
                        return false
                    }
                    if view.counts[.failed] > 0 { throw BenchError("\(view.counts[.failed]) task(s) failed") }
                    return view.counts[.succeeded] >= count
                }
            }.1
            context.log("    \(setup.label): \(count) tasks in \(String(format: "%.2f", seconds)) s"
                        + (unanswered > 0 ? "; \(unanswered) progress poll(s) answered 502/503/504" : ""))
            // The same again with a job that runs after it (a render's encode after its frames): every
            // frame's finish looks whether that job may start.
            let withAfter = try await timed {
                let job = try await admin.submit(json: JobText.frames("true", count: count, command: ["/bin/true"]))
                let after = try await admin.submit(json: try JobText.oneTask("after", command: ["/bin/true"], after: job.id))
                try await until("\(count) tasks and the job after them succeeded", timeout: 600, every: 0.02) {
                    let view: JobView
                    do { view = try await admin.call("GET", APIPath.job(after.id)) } catch let error as WireError
                        where [502, 503, 504].contains(error.status ?? 0) { return false }
                    if view.counts[.failed] > 0 || view.counts[.cancelled] > 0 { throw BenchError("the job after failed") }
                    return view.counts[.succeeded] == 1
                }
            }.1
            context.log("    \(setup.label): \(count) tasks and a job after them in \(String(format: "%.2f", withAfter)) s")
            var extra: [Figure] = []
            if let proxy {
                // HAProxy logs "Server masters/masterN is DOWN" when a master fails 2 health checks (1 s apart).
                // (-db prints each state change twice: as a [WARNING] on stderr and as a log line.)
                let lines = proxy.log().split(separator: "\n").filter { $0.hasPrefix("[WARNING]") && $0.contains(" is DOWN") }
                let downs = lines.count
                let reasons = Set(lines.compactMap { line in
                    line.range(of: "reason: ").map { line[$0.upperBound...].prefix { $0 != "," } }.map(String.init)
                })
                context.log("    HAProxy took a master out of rotation \(downs) time(s)"
                            + (reasons.isEmpty ? "" : " (\(reasons.sorted().joined(separator: "; ")))"))
                extra.append(Figure("\(setup.label): masters taken out of rotation during the run", Double(downs), "times",
                                    note: "HAProxy health check (GET /healthz, 1 s apart, as shipped) failed twice"))
            }
            return [Figure("\(setup.label): /bin/true × \(count), \(agents) agents × \(slots) slots", Double(count) / seconds,
                           "tasks/s", note: "one frame job; submit → job counts \(count) succeeded (polled every 20 ms)"),
                    Figure("\(setup.label): the same with a job after it", Double(count + 1) / withAfter, "tasks/s",
                           note: "the frame job, then a one-task job `after` it; submit → that job succeeded")]
                + latencyFigures("\(setup.label): claim, \(grouped(queue)) queued", claims,
                                 note: "one simulated agent through the agents' URL; one slot, wait 0; after \(warmup) warm-up claims")
                + extra
        }
    }
}
