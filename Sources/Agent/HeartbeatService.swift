import Foundation
import Logging
import PaddockClient
import PaddockFootprint
import PaddockProtocol
import ServiceLifecycle

/// Renews the agent's leases and tells the master it is alive, with a sample of the host and of
/// each run; stops the runs whose leases the master says are gone (expired, or handed on).
struct HeartbeatService: Service {
    let session: AgentSession
    let workload: Workload
    let outbox: Outbox
    let config: AgentConfig
    let clock: any AgentClock
    let logger: Logger

    /// How often an idle agent (no lease held, nothing unreported) heartbeats when its host does not
    /// move (`hostMoved`): the long-polls it holds keep it online meanwhile.
    static let idleInterval: Double = 60
    /// How many one-second looks an idle agent's first release waits for the end of its start-up (see `run`).
    static let settlingLooks = 10
    /// Whether a host sample differs enough from the last one reported to be reported now, by an
    /// idle agent (a test can say).
    var hostMoved: @Sendable (HostMetrics, HostMetrics?) -> Bool = Self.hostMoved

    /// The CPU busier or idler by 5 points, memory in use by 2 % of it, the work dir's disk by 1 %,
    /// a GPU's use by 5 points: what a farm's graphs would show.
    static func hostMoved(_ now: HostMetrics, since reported: HostMetrics?) -> Bool {
        guard let reported else { return true }
        func share(_ a: Int64, _ b: Int64, of total: Int64) -> Double { total > 0 ? Double(abs(a - b)) / Double(total) : 0 }
        if abs(now.cpu.busyPercent - reported.cpu.busyPercent) >= 5 { return true }
        if share(now.memory.used, reported.memory.used, of: now.memory.total) >= 0.02 { return true }
        if share(now.disk.free, reported.disk.free, of: now.disk.total) >= 0.01 { return true }
        if now.gpus.count != reported.gpus.count { return true }
        return zip(now.gpus, reported.gpus).contains { abs(($0.utilizationPercent ?? 0) - ($1.utilizationPercent ?? 0)) >= 5 }
    }

    /// Holds no lease, has nothing unacknowledged and is not leaving.
    private var isIdle: Bool {
        get async {
            let leaving = await workload.leaving
            let leases = await workload.leases
            let unacknowledged = await outbox.unacknowledged
            return !leaving && leases.isEmpty && unacknowledged.isEmpty
        }
    }

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            let probe = HostProbe(workDir: config.workDir)
            // Failed beats are retried sooner than the interval (a lease must not lapse for one lost
            // beat), but with back-off and jitter: a farm of agents must not hammer a master that is
            // just back, or a frontend with no master behind it.
            var backoff = Backoff(base: 0.2, cap: max(0.2, min(5, await session.heartbeatInterval)))
            // A sample taken while idle that moved: the next beat carries it (a fresh one would cover no time).
            var pending: HostMetrics?
            var reported: HostMetrics?
            // An idle `paddock agent` drops the code its start-up and its runs left resident (ARCHITECTURE §3, "An idle agent's footprint").
            var footprint = config.releasesIdlePages ? ResidentTrim("idle agent", logger: logger) : nil
            let failures = workload.exchanges.failures
            while !Task.isCancelled {
                // An exchange that fails from here on brings the next beat forward (see below).
                let failuresSeen = failures.generation
                do {
                    let running = await workload.processes
                    // A run in a cgroup is measured by the kernel's counters for it; others by /proc, one
                    // pass over it for every process group.
                    let sampled = HostProbe.usage(ofProcessGroups: Set(running.values.compactMap(\.process.measuredGroup)))
                    var usage: [TaskUsageReport] = []
                    for (task, running) in running {
                        guard let sample = running.process.cgroupUsage() ?? running.process.measuredGroup.flatMap({ sampled[$0] })
                        else { continue }
                        await workload.recordUsage(sample, for: task)
                        if let total = await workload.usage(of: task) {
                            usage.append(TaskUsageReport(task: task, epoch: running.epoch, usage: total))
                        }
                    }
                    let held = await HeldLeases.now(workload, outbox)
                    let metrics = if let pending { pending } else { await probe.sample() }
                    let beat = HeartbeatRequest(held: held.leases, leaving: await workload.leaving, metrics: metrics, usage: usage,
                                                answered: held.answered)
                    let enrolled = try await session.enrolledSession()  // as it is now (enrolled again after a 401)
                    let reply = try await enrolled.master.heartbeat(beat, agent: enrolled.id, timeout: 30)
                    pending = nil
                    reported = metrics
                    backoff.reset()
                    backoff.cap = max(0.2, min(5, reply.heartbeatInterval))
                    for lost in reply.lost {
                        if let run = await workload.markStopped(lost.task, epoch: lost.epoch, reason: .leaseLost) {
                            logger.warning("lease of \(lost.task) lost: stopping it")
                            Task { await run.terminate(grace: config.killGrace, clock: clock) }
                        }
                    }
                    // After a busy period, what the runs mapped goes once the agent is idle again; the
                    // first release waits for start-up's end (below).
                    if footprint?.floor != nil, await isIdle { footprint?.releaseIfGrown() }
                    // Idle and online, the agent is kept alive by the long-polls it holds (the master's
                    // `LivenessKeeper`): it beats to report its host, when that moved or every
                    // `idleInterval`. It looks every interval, so a lease it is given is renewed as soon
                    // as ever.
                    // An exchange that failed since this beat was taken may have granted leases whose answer
                    // was lost: they hold the agent's room on the master, idle, until a beat gives them
                    // back, so the next one goes at once.
                    var quiet: Double = 0
                    // Start-up runs on past the first beat (the launcher's warm children, the first
                    // exchange, sent once the master heard the agent holds nothing): a release at this
                    // beat would see them map their pages back until the next look, an interval later.
                    // So an idle agent that never released looks every second until it holds an exchange
                    // open (its long-poll), and releases then (or after `settlingLooks`).
                    var settling = 0
                    if let footprint, footprint.floor == nil, await isIdle { settling = Self.settlingLooks }
                    while true {
                        let look = settling > 0 ? min(1, reply.heartbeatInterval) : reply.heartbeatInterval
                        await failures.wait(since: failuresSeen, timeout: .milliseconds(Int(look * 1000)))
                        try Task.checkCancellation()
                        if failures.generation != failuresSeen { break }
                        quiet += look
                        guard reply.state == .online, quiet < Self.idleInterval, await isIdle else { break }
                        if settling > 0 {
                            settling -= 1
                            if workload.exchanges.hasOneOpen || settling == 0 {
                                footprint?.releaseIfGrown()
                                settling = 0
                            }
                            continue
                        }
                        footprint?.releaseIfGrown()
                        let sample = await probe.sample()
                        if hostMoved(sample, reported) {
                            pending = sample
                            break
                        }
                    }
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("heartbeat failed: \(error)")
                    try await backoff.sleep(on: clock)
                }
            }
        }
    }
}
