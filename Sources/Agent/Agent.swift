import Foundation
import Logging
import PaddockClient
import PaddockProtocol
import ServiceLifecycle

/// The agent: its long-running parts as services for one ServiceGroup.
public struct Agent: Sendable {
    public let config: AgentConfig

    public init(config: AgentConfig) { self.config = config }

    /// With `--on-stop requeue`, SIGTERM ends the agent within this, whatever it is doing.
    public static let stopDeadline: Duration = .seconds(10)

    /// Heartbeat first: the group stops services in reverse order, so the exchange loop winds down
    /// (and reports its released tasks) while heartbeats still run and the commands its exchanges
    /// bring are still applied.
    public func services(logger: Logger) throws -> [any Service] {
        try FileManager.default.createDirectory(atPath: config.workDir, withIntermediateDirectories: true)
        let orphans = ProcessLedger(workDir: config.workDir).reapOrphans()
        if orphans > 0 { logger.warning("killed \(orphans) process(es) left running by an earlier run of this agent") }
        // Sessions do not outlive the agent: the directories an earlier run left open go (their processes are gone above).
        WorkDirectory.remove(config.workDir + "/" + SessionTable.directory)
        WorkDirectory.removeSpares(in: config.workDir + "/tasks")
        if let (before, after) = OpenFileLimit.raise(), after > before {
            logger.info("open files: soft limit raised from \(before) to \(after)")
        }
        let containment = Containment.detect(policy: config.containment, logger: logger)
        logger.notice("\(containment.summary)")
        // The master, trusting the configured CA file for https://, with the join token until enrolled.
        let master = try config.caFile.map { caFile throws(ClientTLSError) in
            try MasterClient(baseURL: config.masterURL, token: config.joinToken, caFile: caFile)
        } ?? MasterClient(baseURL: config.masterURL, token: config.joinToken)
        let clock = ContinuousClock()
        let launcher = ContainedLauncher(containment: containment, ledger: ProcessLedger(workDir: config.workDir))
        let session = AgentSession(config: config, master: master, clock: clock, logger: logger)
        let workload = Workload(total: config.resources, slots: config.slots, prefetch: config.prefetch,
                                nudge: Nudge(clock: clock))
        let outbox = Outbox(nudge: workload.nudge)
        let sessions = SessionTable.make(launcher: launcher, config: config, clock: clock, logger: logger)
        let feed = CommandFeed(workDir: config.workDir, clock: clock)
        return [
            HeartbeatService(session: session, workload: workload, outbox: outbox, config: config, clock: clock,
                             logger: logger),
            TalkbackService(feed: feed, workload: workload, config: config, clock: clock, logger: logger,
                            sessions: sessions),
            ExchangeService(session: session, workload: workload, outbox: outbox, feed: feed, config: config,
                            launcher: launcher, clock: clock, logger: logger, sessions: sessions),
        ]
    }
}
