import Foundation
import Logging
import PaddockClient
import PaddockProtocol
import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Applies the master's talkback commands, in order, idempotently (delivery is at-least-once).
/// They come with the exchanges' answers (`CommandFeed`): the agent's one long-poll carries its
/// claim and its talkback. The last applied sequence number is kept in the work dir, so a command
/// is applied once even across restarts.
struct TalkbackService: Service {
    let feed: CommandFeed
    let workload: Workload
    let config: AgentConfig
    let clock: any AgentClock
    let logger: Logger
    /// The agent's OpenJD sessions: a drain exits the idle ones.
    var sessions: SessionTable? = nil
    /// What the `shutdown` command does: the same as SIGTERM, so the service group winds the agent
    /// down gracefully.
    var shutdown: @Sendable () -> Void = { kill(getpid(), SIGTERM) }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var cursor: TalkbackCursor?
            for await delivery in feed.deliveries {
                var applied = cursor.flatMap { $0.agent == delivery.agent ? $0 : nil }
                    ?? TalkbackCursor.load(workDir: config.workDir, agent: delivery.agent)
                for command in delivery.batch.commands where command.seq > applied.seq {
                    await apply(command)
                    applied.seq = command.seq
                    applied.save(workDir: config.workDir)
                }
                // Commands of kinds this agent does not know (a newer master's) are acknowledged unapplied.
                if delivery.batch.last > applied.seq {
                    logger.warning("talkback: command(s) up to \(delivery.batch.last) are of kinds this agent does not know: ignored")
                    applied.seq = delivery.batch.last
                    applied.save(workDir: config.workDir)
                }
                cursor = applied
                feed.applied(applied.seq, agent: delivery.agent)
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

/// The talkback commands the exchanges brought, on their way to `TalkbackService`, and the cursor
/// the exchanges send: the last command received. Received is enough: what was received is applied
/// in order by this process; a process that dies first starts again from the last one applied
/// (`TalkbackCursor`), so the master sends the rest again.
final class CommandFeed: Sendable {
    struct Delivery: Sendable {
        var agent: AgentID
        var batch: CommandBatch
    }

    private struct State {
        var agent: AgentID?
        var received: Int64 = 0
        var applied: Int64 = 0
    }

    let deliveries: AsyncStream<Delivery>
    private let sink: AsyncStream<Delivery>.Continuation
    private let state = Mutex(State())
    private let workDir: String
    /// Poked when a batch has been applied.
    let progress: Nudge

    init(workDir: String, clock: any AgentClock) {
        self.workDir = workDir
        (deliveries, sink) = AsyncStream.makeStream(of: Delivery.self)
        progress = Nudge(clock: clock)
    }

    /// The talkback poll for `agent`'s next exchange: the commands after the last one received.
    func poll(for agent: AgentID, wait: Double = 0) -> TalkbackPoll {
        state.withLock { state in
            if state.agent != agent {
                // Enrolled (again): this agent id's cursor, as its last run left it.
                state.agent = agent
                state.received = TalkbackCursor.load(workDir: workDir, agent: agent).seq
                state.applied = state.received
            }
            return TalkbackPoll(after: state.received, wait: wait)
        }
    }

    /// An exchange's answer: its commands go to be applied, and the next poll asks for those after.
    func put(_ batch: CommandBatch, agent: AgentID) {
        state.withLock { state in
            guard state.agent == agent, batch.last > state.received else { return }
            state.received = batch.last
            // Under the lock: batches reach the service in the order of their cursors, so a later
            // one (after 5: commands 6 and 7) never overtakes the earlier one it follows (1 to 5).
            sink.yield(Delivery(agent: agent, batch: batch))
        }
    }

    /// The last command applied for the agent the feed polls for.
    var applied: Int64 { state.withLock { $0.applied } }

    func applied(_ seq: Int64, agent: AgentID) {
        state.withLock { state in
            if state.agent == agent { state.applied = max(state.applied, seq) }
        }
        progress.poke()
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
