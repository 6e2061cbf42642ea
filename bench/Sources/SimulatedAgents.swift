import Foundation
import PaddockProtocol

/// One agent as the master knows it, driven from this process over the real protocol.
struct SimulatedAgent: Sendable {
    let id: AgentID
    /// The agent's own client: its credential as bearer token.
    let wire: Wire

    /// Claims up to `slots` tasks, waiting up to `wait` seconds at the master.
    func claim(slots: Int, wait: Double) async throws -> [TaskLease] {
        let reply: ClaimResponse = try await wire.call("POST", APIPath.claim(id), json: ClaimRequest(slots: slots, wait: wait),
                                                       timeout: wait + 60)
        return reply.leases
    }

    /// Reports a lease started and then succeeded, as a real agent would around a process that exits 0.
    func runInstantly(_ lease: TaskLease) async throws {
        try await wire.send("POST", APIPath.taskStart(lease.task), json: TaskReport(epoch: lease.epoch))
        try await wire.send("POST", APIPath.taskFinish(lease.task),
                            json: FinishReport(epoch: lease.epoch, outcome: .succeeded, exitCode: 0))
    }

    /// The client-side round trips of `warmup + samples` claims (one slot, no wait), each claimed
    /// task then run instantly so the agent holds nothing between claims; warm-up claims are not kept.
    /// A claim that gets nothing throws, with what `empty(claimNumber)` says.
    func timedClaims(warmup: Int, samples: Int, empty: (Int) async -> String) async throws -> [Double] {
        var seconds: [Double] = []
        for index in 0..<(warmup + samples) {
            let (leases, elapsed) = try await timed { try await claim(slots: 1, wait: 0) }
            guard let lease = leases.first else { throw BenchError(await empty(index + 1)) }
            if index >= warmup { seconds.append(elapsed) }
            try await runInstantly(lease)
        }
        return seconds
    }

    /// One exchange: reports `finished` leases succeeded and claims up to `slots` (all of the agent's
    /// slots are free once they are reported), waiting up to `wait` seconds when nothing fits.
    func exchange(finished: [TaskLease], slots: Int, wait: Double) async throws -> [TaskLease] {
        let request = ExchangeRequest(
            finished: finished.map { ExchangeFinish(task: $0.task, report: FinishReport(epoch: $0.epoch, outcome: .succeeded,
                                                                                        exitCode: 0)) },
            claim: slots > 0 ? ClaimRequest(slots: slots, wait: wait, capacity: slots) : nil)
        let reply: ExchangeResponse = try await wire.call("POST", APIPath.exchange(id), json: request, timeout: wait + 60)
        guard reply.refused.isEmpty else { throw BenchError("exchange refused \(reply.refused)") }
        return reply.leases
    }

    func heartbeat() async throws {
        // Not authoritative: an authoritative heartbeat wakes every waiting claim at the master.
        try await wire.send("PUT", APIPath.heartbeat(id), json: HeartbeatRequest(held: []))
    }
}

/// A crowd of simulated agents sharing a few connection pools, so that thousands of
/// requests can be open at once (each pool allows `perSession` connections).
struct SimulatedFleet: Sendable {
    let agents: [SimulatedAgent]

    /// Enrolls `count` agents with the join token, `concurrency` enrollments in flight.
    static func enroll(_ count: Int, farm: Farm, cpus: Double = 16, concurrency: Int = 16,
                       perSession: Int = 512) async throws -> SimulatedFleet {
        // Room for two requests per agent: its long-poll and a heartbeat or report beside it.
        let sessions = (0..<max(1, (count * 2 + perSession - 1) / perSession + 1)).map { _ in Wire.session(connections: perSession) }
        let join = farm.join
        let prefix = "sim-\(UUID().uuidString.prefix(4))"
        var enrolled: [(Int, EnrollResponse)] = []
        try await withThrowingTaskGroup(of: (Int, EnrollResponse).self) { group in
            for index in 0..<count {
                if index >= concurrency, let result = try await group.next() { enrolled.append(result) }
                let request = EnrollRequest(name: "\(prefix)-\(index)",
                                            resources: ResourceVector(cpus: cpus, ram: 64 << 30, disk: 64 << 30),
                                            tags: [], version: "bench")
                group.addTask { (index, try await join.call("POST", APIPath.agents, json: request, as: EnrollResponse.self)) }
            }
            while let result = try await group.next() { enrolled.append(result) }
        }
        let agents = enrolled.sorted { $0.0 < $1.0 }.map { index, reply in
            SimulatedAgent(id: reply.id, wire: join.with(token: reply.credential).with(session: sessions[index % sessions.count]))
        }
        return SimulatedFleet(agents: agents)
    }
}

/// Counts completions across concurrent workers and notes when a target is reached.
actor Tally {
    private(set) var count = 0
    private(set) var errors = 0
    private(set) var reachedAt: ContinuousClock.Instant?
    private(set) var lastError: String?
    let target: Int

    init(target: Int) { self.target = target }

    func add(_ n: Int) {
        count += n
        if count >= target, reachedAt == nil { reachedAt = .now }
    }

    func fail(_ error: any Error) {
        errors += 1
        lastError = "\(error)"
    }

    var done: Bool { count >= target }
}
