import Foundation
import Logging
import PaddockClient
import PaddockProtocol
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

/// Keeps one long-poll open to the master's command queue for this agent and
/// applies every command, in order, idempotently (delivery is at-least-once).
/// The last applied sequence number is kept in the work dir, so a command is
/// applied once even across restarts.
struct TalkbackService: Service {
    let session: AgentSession
    let workload: Workload
    let config: AgentConfig
    let clock: any AgentClock
    let logger: Logger
    /// The agent's OpenJD sessions: a drain exits the idle ones.
    var sessions: SessionTable? = nil
    /// How long each long-poll waits at the master.
    var wait: Double = 50
    /// What the `shutdown` command does: the same as SIGTERM, so the service group winds the agent
    /// down gracefully.
    var shutdown: @Sendable () -> Void = { kill(getpid(), SIGTERM) }

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            var cursor = TalkbackCursor.load(workDir: config.workDir, agent: try await session.enrolledSession().id)
            var backoff = Backoff(base: 0.2, cap: 10)
            while !Task.isCancelled {
                do {
                    let enrolled = try await session.enrolledSession()  // as it is now (enrolled again after a 401)
                    let batch = try await enrolled.master.commands(agent: enrolled.id, after: cursor.seq, wait: wait,
                                                                   timeout: wait + 30)
                    backoff.reset()
                    for command in batch.commands where command.seq > cursor.seq {
                        await apply(command)
                        cursor.seq = command.seq
                        cursor.save(workDir: config.workDir)
                    }
                    // Commands of kinds this agent does not know (a newer master's) are acknowledged unapplied.
                    if batch.last > cursor.seq {
                        logger.warning("talkback: command(s) up to \(batch.last) are of kinds this agent does not know: ignored")
                        cursor.seq = batch.last
                        cursor.save(workDir: config.workDir)
                    }
                } catch is CancellationError {
                    return
                } catch {
                    if Task.isCancelled { return }
                    logger.warning("talkback: \(error); reconnecting")
                    try await backoff.sleep(on: clock)
                }
            }
        }
    }

    func apply(_ command: AgentCommand) async {
        logger.info("command \(command.seq): \(command.kind.rawValue)\(command.task.map { " \($0)" } ?? "")")
        switch command.kind {
        case .cancel, .drop:
            guard let task = command.task else { return }
            let reason: StopReason = command.kind == .cancel ? .cancelled : .dropped
            await workload.markStopped(task, epoch: command.epoch, reason: reason)?.terminate(grace: config.killGrace, clock: clock)
        case .giveBack:
            guard let task = command.task, let epoch = command.epoch else { return }
            if await workload.giveBack(task, epoch: epoch) {
                logger.info("task \(task): given back before it started (an idle agent has room for it)")
            } else {
                logger.info("task \(task): asked to give it back, but it has started (or ended): kept")
            }
        case .drain:
            await workload.setDraining(true)
            await sessions?.close()
        case .undrain:
            await workload.setDraining(false)
            await sessions?.reopen()
        case .update:
            if let resources = command.resources { await workload.setTotal(resources) }
        case .shutdown:
            shutdown()
        case .ping:
            break
        }
    }
}

/// The last command this agent applied, per agent id.
struct TalkbackCursor: Codable {
    var agent: AgentID
    var seq: Int64

    static func path(_ workDir: String) -> String { workDir + "/agent-talkback.json" }

    static func load(workDir: String, agent: AgentID) -> TalkbackCursor {
        guard let data = FileManager.default.contents(atPath: path(workDir)),
              let cursor = try? JSONDecoder().decode(TalkbackCursor.self, from: data), cursor.agent == agent
        else { return TalkbackCursor(agent: agent, seq: 0) }
        return cursor
    }

    func save(workDir: String) {
        guard let data = try? JSONEncoder().encode(self) else { return }
        let path = Self.path(workDir)
        // Written, then renamed over the old one: a crash never leaves half a cursor.
        if FileManager.default.createFile(atPath: path + ".tmp", contents: data) {
            rename(path + ".tmp", path)
        }
    }
}
