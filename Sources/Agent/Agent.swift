import Foundation
import Logging
import PaddockProtocol
import ServiceLifecycle

/// The agent: its long-running parts as services for one ServiceGroup.
public struct Agent: Sendable {
    public let config: AgentConfig

    public init(config: AgentConfig) { self.config = config }

    /// With `--on-stop requeue`, SIGTERM ends the agent within this, whatever it is doing.
    public static let stopDeadline: Duration = .seconds(10)

    /// Heartbeat first: the group stops services in reverse order, so the exchange loop winds down
    /// (and reports its released tasks) while heartbeats and talkback still run.
    public func services(logger: Logger) throws -> [any Service] {
        try FileManager.default.createDirectory(atPath: config.workDir, withIntermediateDirectories: true)
        let orphans = ProcessLedger(workDir: config.workDir).reapOrphans()
        if orphans > 0 { logger.warning("killed \(orphans) process(es) left running by an earlier run of this agent") }
        let containment = Containment.detect(policy: config.containment, logger: logger)
        logger.notice("\(containment.summary)")
        let session = AgentSession(config: config, logger: logger)
        let workload = Workload(total: config.resources, slots: config.slots, prefetch: config.prefetch)
        let outbox = Outbox(nudge: workload.nudge)
        return [
            HeartbeatService(session: session, workload: workload, outbox: outbox, config: config, logger: logger),
            TalkbackService(session: session, workload: workload, config: config, logger: logger),
            ExchangeService(session: session, workload: workload, outbox: outbox, config: config, containment: containment,
                            logger: logger),
        ]
    }
}
