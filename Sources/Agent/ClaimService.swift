import Foundation
import Logging
import PaddockClient
import PaddockProtocol
import ServiceLifecycle

/// Enrolls, then claims what fits the agent's free room and runs each lease.
/// On graceful shutdown it stops claiming, stops its tasks and gives them back
/// to the queue (`released`: no attempt used), then returns.
struct ClaimService: Service {
    let session: AgentSession
    let workload: Workload
    let config: AgentConfig
    let logger: Logger

    func run() async throws {
        // A refused enrollment (a wrong join token) ends the agent with that error.
        try await cancelWhenGracefulShutdown { try await session.enroll() }
        await withDiscardingTaskGroup { group in
            let (leases, sink) = AsyncStream.makeStream(of: (TaskLease, AgentSession.Enrolled).self)
            group.addTask {
                await cancelWhenGracefulShutdown { await claimLoop(sink) }
                sink.finish()
            }
            for await (lease, enrolled) in leases {
                let runner = TaskRunner(lease: lease, session: enrolled, workload: workload, config: config, logger: logger)
                group.addTask { await runner.run() }
            }
            // Shutting down: say so first (no more work is handed out), then stop and release every task.
            await workload.leave()
            await announce(leaving: true, authoritative: false)
            switch config.onStop {
            case .requeue: await stopAll(reason: TaskRunner.shutdownReason)
            case .drain:
                // What runs finishes (the group waits for its runners); what waits to start goes back.
                logger.info("draining: waiting for the running tasks to finish")
                await stopWaiting(reason: TaskRunner.shutdownReason)
            }
        }
        // Whatever is still leased to this agent (a claim answered while it left) goes back at once.
        await announce(leaving: true, authoritative: true)
        logger.info("agent \(config.name) stopped")
    }

    /// A heartbeat that tells the master what this agent holds, all of it, and whether it is leaving.
    private func announce(leaving: Bool, authoritative: Bool) async {
        let enrolled = await session.ready()
        let beat = HeartbeatRequest(held: await workload.leases, authoritative: authoritative, leaving: leaving)
        do {
            let _: HeartbeatResponse = try await enrolled.client.call("PUT", APIPath.heartbeat(enrolled.id), json: beat)
        } catch {
            logger.warning("telling the master we \(leaving ? "leave" : "are back") failed: \(error)")
        }
    }

    private func claimLoop(_ sink: AsyncStream<(TaskLease, AgentSession.Enrolled)>.Continuation) async {
        // A fresh process holds nothing: what an earlier run of this agent held is requeued now,
        // not after the lease timeout, and the agent is online before its first claim.
        await announce(leaving: false, authoritative: true)
        var backoff = Backoff()
        while !Task.isCancelled {
            await workload.waitForRoom()
            let enrolled = await session.ready()
            let free = await workload.free
            let slots = free.milliCPUs > 0 || free == .zero ? await workload.freeSlots : 0
            let request = ClaimRequest(slots: slots, wait: config.claimWait, free: free,
                                       prefetch: await workload.prefetchRoom)
            do {
                let reply: ClaimResponse = try await enrolled.client.longPoll(
                    "POST", APIPath.claim(enrolled.id), json: request, timeout: config.claimWait + 30)
                backoff.reset()
                for lease in reply.leases {
                    await workload.add(lease)
                    sink.yield((lease, enrolled))
                }
            } catch let error where error.status == 401 {
                logger.warning("the master no longer knows this agent's credential: enrolling again")
                do { try await session.enroll(forget: true) } catch { return }
            } catch {
                if Task.isCancelled { break }
                logger.warning("claim failed: \(error)")
                if !error.isRetryable {
                    ExceptionReporter(session: enrolled, logger: logger).report("claim_failed", error.description)
                }
                try? await backoff.sleep()
            }
        }
    }

    /// Gives back the leases that have not started (their runners see the stop and release them).
    func stopWaiting(reason: String) async {
        for task in await workload.notStarted() { _ = await workload.markStopped(task, reason: reason) }
    }

    /// Stops every task the agent runs (SIGTERM, then SIGKILL after the grace) and waits for them.
    func stopAll(reason: String) async {
        await withDiscardingTaskGroup { group in
            for task in await workload.allTasks() {
                if let process = await workload.markStopped(task, reason: reason), let process {
                    group.addTask { await process.terminate(grace: config.killGrace) }
                }
            }
        }
    }
}

/// Renews the agent's leases and tells the master it is alive; stops the tasks
/// whose leases the master says are gone (expired, or handed to another agent).
struct HeartbeatService: Service {
    let session: AgentSession
    let workload: Workload
    let config: AgentConfig
    let logger: Logger

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            let enrolled = await session.ready()
            let probe = HostProbe(workDir: config.workDir)
            // Failed beats are retried sooner than the interval (a lease must not lapse for one lost
            // beat), but with back-off and jitter: a farm of agents must not hammer a master that is
            // just back, or a frontend with no master behind it.
            var backoff = Backoff(base: 0.2, cap: max(0.2, min(5, await session.heartbeatInterval)))
            while !Task.isCancelled {
                do {
                    let groups = await workload.processGroups
                    let sampled = HostProbe.usage(ofProcessGroups: Set(groups.values.map(\.group)))
                    var usage: [TaskUsageReport] = []
                    for (task, running) in groups {
                        guard let sample = sampled[running.group] else { continue }
                        await workload.recordUsage(sample, for: task)
                        if let total = await workload.usage(of: task) {
                            usage.append(TaskUsageReport(task: task, epoch: running.epoch, usage: total))
                        }
                    }
                    let beat = HeartbeatRequest(held: await workload.leases, leaving: await workload.leaving,
                                                metrics: await probe.sample(), usage: usage)
                    let reply: HeartbeatResponse = try await enrolled.client.call(
                        "PUT", APIPath.heartbeat(enrolled.id), json: beat)
                    backoff.reset()
                    backoff.cap = max(0.2, min(5, reply.heartbeatInterval))
                    for lost in reply.lost {
                        if let process = await workload.markStopped(lost.task, epoch: lost.epoch, reason: "lease lost"),
                           let process {
                            logger.warning("lease of \(lost.task) lost: stopping it")
                            Task { await process.terminate(grace: config.killGrace) }
                        }
                    }
                    try await Task.sleep(for: .milliseconds(Int(reply.heartbeatInterval * 1000)))
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("heartbeat failed: \(error)")
                    try await backoff.sleep()
                }
            }
        }
    }
}

/// The agent: its long-running parts as services for one ServiceGroup.
public struct Agent: Sendable {
    public let config: AgentConfig

    public init(config: AgentConfig) { self.config = config }

    /// Heartbeat first: the group stops services in reverse order, so the claim
    /// loop winds down (and reports its released tasks) while heartbeats and talkback still run.
    public func services(logger: Logger) throws -> [any Service] {
        try FileManager.default.createDirectory(atPath: config.workDir, withIntermediateDirectories: true)
        let orphans = ProcessLedger(workDir: config.workDir).reapOrphans()
        if orphans > 0 { logger.warning("killed \(orphans) process(es) left running by an earlier run of this agent") }
        let session = AgentSession(config: config, logger: logger)
        let workload = Workload(total: config.resources, slots: config.slots, prefetch: config.prefetch)
        return [
            HeartbeatService(session: session, workload: workload, config: config, logger: logger),
            TalkbackService(session: session, workload: workload, config: config, logger: logger),
            ClaimService(session: session, workload: workload, config: config, logger: logger),
        ]
    }
}
