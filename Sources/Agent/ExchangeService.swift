import Foundation
import Logging
import PaddockClient
import PaddockProtocol
import ServiceLifecycle
import Synchronization

/// Enrolls, then keeps the agent's conversation with the master: every report of its runs and
/// every claim for its free room go through `POST /v1/agents/{id}/exchange`.
///
/// Two loops share the work. The pump sends what the outbox holds (a finish or a start at once,
/// or within `Outbox.coalesceWindow` while prefetched leases keep every slot busy; output every
/// `Outbox.logTick`) together with a claim for the room free now: a finished run and its
/// successor's lease are one round trip. The poller, while the pump has nothing to send, holds a
/// long-poll exchange that the master answers the moment work fits the agent's room or a talkback
/// command is posted; a pump exchange arriving meanwhile supersedes it at the master (it answers with
/// no lease), and the master counts the agent's busy slots itself, so two claims in flight never
/// over-commit it. Every exchange brings the commands after the last one received (`CommandFeed`):
/// the agent keeps one long-poll, not one for work and one for its commands.
///
/// On graceful shutdown the agent stops claiming, says it is leaving, stops its runs and gives
/// them back (`--on-stop requeue`, no attempt used) or lets them finish (`drain`), delivers their
/// ends, and returns.
struct ExchangeService: Service {
    let session: AgentSession
    let workload: Workload
    let outbox: Outbox
    let feed: CommandFeed
    let config: AgentConfig
    let launcher: any ProcessLauncher
    let clock: any AgentClock
    let logger: Logger
    /// The agent's OpenJD sessions (`SessionTable`); nil: a table of its own.
    var sessions: SessionTable? = nil

    /// How long the agent still tries to deliver its last reports once nothing runs any more; and
    /// at least until this long after it began to leave (a master restarting just then is back in
    /// time to hear how its runs ended), with the last heartbeat's 2 s within `Agent.stopDeadline`.
    static let flushGrace: Duration = .seconds(2)
    static let flushWindow: Duration = .seconds(4)
    /// With no room to claim for, the poller holds a talkback-only long-poll once the pump has been
    /// quiet this long: a busy pump's exchanges bring the commands anyway, and a long-poll that the
    /// next report would supersede at once would only double the requests.
    static let talkbackSettle: Duration = Outbox.logTick

    var nudge: Nudge { workload.nudge }

    func run() async throws {
        // Every run has ended (or none began): the warm children, the idle cgroups and the agent's own
        // directories go.
        defer { launcher.close() }
        // A refused enrollment (a wrong join token) ends the agent with that error; a shutdown
        // while the master is unreachable ends it at once.
        do {
            try await cancelWhenGracefulShutdown { try await session.enroll() }
        } catch is CancellationError {
            return
        }
        let enrolled = await session.ready()
        if let decided = launcher.open(slots: config.slots) { logger.info("\(decided)") }
        let pumpActivity = PumpActivity(clock: clock)
        let pumpGaveUp = LoopFlag()
        let sessions = self.sessions ?? SessionTable.make(launcher: launcher, config: config, clock: clock, logger: logger)
        let leaving = LeavingWork()
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                let (leases, sink) = AsyncStream.makeStream(of: TaskLease.self)
                // A fresh process holds nothing: what an earlier run of this agent held is requeued now,
                // not after the lease timeout, and the agent is online before its first claim.
                await announceFresh()
                group.addTask {
                    await pump(sink, activity: pumpActivity, gaveUp: pumpGaveUp)
                    pumpActivity.end()
                    nudge.poke()
                    workload.departure.poke()  // the poller's talkback long-poll ends
                    sink.finish()
                }
                group.addTask { await poller(sink, pump: pumpActivity) }
                for await lease in leases {
                    let runner = TaskRunner(lease: lease, session: enrolled, workload: workload, outbox: outbox,
                                            config: config, launcher: launcher, clock: clock, logger: logger,
                                            sessions: sessions)
                    group.addTask { await runner.run() }
                }
            }
        } onGracefulShutdown: {
            leaving.begin {
                await sessions.close()
                await leave()
            }
        }
        // The runs are over: the open sessions' environments are exited before the agent ends.
        await sessions.closeAll(within: SessionTable.shutdownBound, grace: .seconds(1))
        // A long-poll answered just as the agent began to leave, after the pump had ended, put its
        // leases' releases in the outbox: they are delivered now, or the goodbye below would list
        // them as held and the master would keep them until their lease timed out. (Not when the
        // pump gave up on a master that does not answer: its window is spent.)
        if !pumpGaveUp.value, !(await outbox.isEmpty) {
            let (_, leftovers) = AsyncStream.makeStream(of: TaskLease.self)
            await pump(leftovers, activity: pumpActivity)
        }
        // Whatever is still leased to this agent (an answer lost while it left) goes back at once.
        // Said last: the runs can all end before the word sent as the agent began to leave has been
        // heard, and that one (not authoritative) must not arrive after this one.
        await leaving.finished()
        await announce(leaving: true, authoritative: true)
        logger.info("agent \(config.name) stopped")
    }

    /// Stops claiming and winds the runs down as `--on-stop` says.
    private func leave() async {
        await workload.leave()
        await withDiscardingTaskGroup { group in
            // Said while the runs stop, not before: a master that does not answer must not delay them.
            group.addTask { await announce(leaving: true, authoritative: false) }
            switch config.onStop {
            case .requeue:
                for task in await workload.allTasks() {
                    if let run = await workload.markStopped(task, reason: .shutdown) {
                        group.addTask { await run.terminate(grace: config.killGrace, clock: clock) }
                    }
                }
            case .drain:
                // What runs finishes; what waits to start goes back.
                logger.info("draining: waiting for the running tasks to finish")
                for task in await workload.waitingForRoom() { _ = await workload.markStopped(task, reason: .shutdown) }
            }
        }
    }

    /// Says that this fresh process holds nothing, until the master has heard it (or the agent
    /// leaves, or the master refuses it for good), before the first claim: a master that still
    /// counted an earlier run's leases (this agent killed, the master down when it came back) would
    /// hand out prefetched leases into room it thinks taken, and refuse their starts after they ran.
    private func announceFresh() async {
        var backoff = Backoff()
        while true {
            let seen = workload.departure.generation
            guard await announce(leaving: false, authoritative: true) == .retry, !(await workload.leaving) else { return }
            await workload.departure.wait(since: seen, timeout: backoff.next())
        }
    }

    /// How a heartbeat went: heard, refused for good, or worth trying again.
    private enum Announced { case heard, refused, retry }

    /// A heartbeat that tells the master what this agent holds, all of it, and whether it is leaving.
    @discardableResult
    private func announce(leaving: Bool, authoritative: Bool) async -> Announced {
        let enrolled = await session.ready()
        let held = await HeldLeases.now(workload, outbox)
        let beat = HeartbeatRequest(held: held.leases, authoritative: authoritative, leaving: leaving, answered: held.answered)
        do {
            _ = try await enrolled.master.heartbeat(beat, agent: enrolled.id, timeout: 2)
            return .heard
        } catch {
            logger.warning("telling the master we \(leaving ? "leave" : "are back") failed: \(error)")
            return error.isRetryable ? .retry : .refused
        }
    }

    /// Sends the outbox's reports whenever they are due, each time with a claim for the free room.
    /// Ends when the agent is leaving and has nothing left to run or to tell.
    private func pump(_ sink: AsyncStream<TaskLease>.Continuation, activity: PumpActivity, gaveUp: LoopFlag? = nil) async {
        var backoff = Backoff()
        var idleSince: ContinuousClock.Instant?
        var leavingSince: ContinuousClock.Instant?
        while true {
            let generation = nudge.generation
            if await workload.leaving {
                let since = leavingSince ?? clock.now
                leavingSince = since
                backoff.cap = 0.5  // the last reports are tried often: the window is short
            }
            if let leftAt = leavingSince, await workload.isEmpty {
                if await outbox.isEmpty { return }
                let since = idleSince ?? clock.now
                idleSince = since
                if clock.now - since > Self.flushGrace && clock.now - leftAt > Self.flushWindow {
                    logger.warning("giving up on delivering the last reports: the master does not answer")
                    gaveUp?.set(true)
                    return
                }
            }
            let now = clock.now
            var due = await outbox.readiness(at: now)
            // The workload is asked only once a start or a finish is seen, so its answer is at least
            // as new as that report (the run's lease and the stock that came with it are held). An
            // answer read first could predate the leases and send the report alone.
            if due == .zero, await workload.canCoalesce {
                due = await outbox.readiness(coalescing: true, at: now)
            }
            guard due == .zero else {
                await nudge.wait(since: generation, until: now + (due ?? .seconds(1)))
                continue
            }
            let reports = await outbox.batch()
            let ending = Set(reports.finished.map(\.task))
            let request = ExchangeRequest.with(reports, claim: await workload.claimRequest(wait: 0, ending: ending))
            activity.begin()
            // The session as it is now: enrolled again after a 401, the agent talks with its new credential.
            let delivered = await send(request, await session.ready(), sink, timeout: 30)
            activity.quiet()
            nudge.poke()  // the poller may hold a long-poll again
            if delivered {
                backoff.reset()
            } else {
                try? await backoff.sleep(on: clock)
            }
        }
    }

    /// Holds a long-poll exchange while the pump is quiet: with a claim while the agent has room,
    /// for its talkback commands alone otherwise (once the pump has settled), until the pump ends.
    private func poller(_ sink: AsyncStream<TaskLease>.Continuation, pump: PumpActivity) async {
        var backoff = Backoff()
        while true {
            // Read before the check: the pump's last poke, as it ends, is not missed.
            let generation = nudge.generation
            if pump.ended { return }
            let due = await outbox.readiness()
            let claim = await workload.claimRequest(wait: config.claimWait)
            let quietFor = pump.quietFor  // nil while the pump has an exchange in flight
            let settleLeft = Self.talkbackSettle - (quietFor ?? .zero)
            guard quietFor != nil, due != .zero, claim != nil || (due == nil && settleLeft <= .zero) else {
                // Settling: looked at again once the pump has been quiet long enough.
                let timeout: Duration = quietFor != nil && claim == nil && due == nil ? settleLeft : .seconds(5)
                await nudge.wait(since: generation, timeout: timeout)
                continue
            }
            // A long-poll with a claim ends at once when the agent starts leaving; a talkback one when
            // the pump ends, or when the agent may claim again with nothing left to report (undrained,
            // its total raised: no exchange of the pump would end it and claim).
            logger.debug("holding a long-poll for \(claim == nil ? "commands" : "work and commands"), up to \(Int(config.claimWait)) s")
            let ended = await withTaskGroup(of: LongPollEnd.self) { group in
                let current = await session.ready()
                group.addTask {
                    let request = ExchangeRequest(claim: claim)
                    return await send(request, current, sink, timeout: config.claimWait + 30, talkbackWait: config.claimWait)
                        ? .answered : .failed
                }
                group.addTask {
                    // A talkback-only hold also watches the room (`nudge`: freed slots, drain, undrain).
                    let watched = claim == nil ? nudge : workload.departure
                    while !Task.isCancelled {
                        let seen = watched.generation  // read before the check: a poke in between is not missed
                        if pump.ended { break }
                        if claim != nil, await workload.leaving { break }
                        // Not while the pump has an exchange in flight: that one supersedes the hold
                        // anyway, and ending it here too would cost its connection.
                        if claim == nil, pump.quietFor != nil, await outbox.readiness() == nil,
                           await workload.claimRequest(wait: 0) != nil { return .roomAgain }
                        await watched.wait(since: seen, timeout: .seconds(5))
                    }
                    return .leaving
                }
                let first = await group.next() ?? .leaving
                group.cancelAll()
                return first
            }
            if ended == .failed { try? await backoff.sleep(on: clock) } else { backoff.reset() }
        }
    }

    /// One exchange: true when the master answered it, false when it should be sent again later.
    /// Every exchange asks for the talkback commands after the last one received; `talkbackWait`
    /// holds it for them.
    private func send(_ request: ExchangeRequest, _ enrolled: AgentSession.Enrolled,
                      _ sink: AsyncStream<TaskLease>.Continuation, timeout: Double, talkbackWait: Double = 0) async -> Bool {
        var request = request
        request.talkback = feed.poll(for: enrolled.id, wait: talkbackWait)
        // Closed once its leases are in the workload, or once it failed: a heartbeat taken after
        // that lists every lease it granted that reached the agent.
        let number = workload.exchanges.open()
        request.number = number
        var failed = true
        defer { workload.exchanges.close(number, failed: failed) }
        do {
            let response = try await enrolled.master.exchange(request, agent: enrolled.id, timeout: timeout)
            if let commands = response.talkback { feed.put(commands, agent: enrolled.id) }
            await apply(request, response, sink)
            failed = false
            return true
        } catch let error where error.status == 401 {
            logger.warning("the master no longer knows this agent's credential: enrolling again")
            try? await session.enroll(forget: true)
            return false
        } catch {
            if Task.isCancelled { return false }
            if error.isRetryable {
                logger.warning("exchange failed: \(error)")
            } else {
                // A refusal of the whole exchange (not of one report) would be refused again: drop it.
                logger.error("the master refused an exchange: \(error)")
                ExceptionReporter(session: enrolled, clock: clock, logger: logger).report("exchange_refused", error.description)
                await outbox.discard(request)
            }
            return false
        }
    }

    /// What the master answered: acknowledged reports leave the outbox, refused starts stop their
    /// runs, new leases start.
    private func apply(_ sent: ExchangeRequest, _ response: ExchangeResponse,
                       _ sink: AsyncStream<TaskLease>.Continuation) async {
        for refusal in await outbox.acknowledge(sent, response) {
            switch refusal.kind {
            case .start:
                // Stolen meanwhile (a stale epoch): another agent runs it. Otherwise the master saw no room
                // for it yet: the run stops and the lease goes back to the queue, no attempt used.
                logger.info("task \(refusal.task)'s start was refused (\(refusal.message)): stopping it")
                if let run = await workload.markStopped(refusal.task, epoch: refusal.epoch,
                                                        reason: refusal.stolen ? .dropped : .startRefused) {
                    Task { await run.terminate(grace: config.killGrace, clock: clock) }
                }
            case .finish where refusal.expected:
                logger.info("task \(refusal.task) was stopped by the master; its end is already recorded")
            case .finish:
                logger.warning("finish of \(refusal.task) refused: \(refusal.message)")
            case .log, .progress:
                logger.debug("\(refusal.kind.rawValue) of \(refusal.task) refused: \(refusal.message)")
            }
        }
        for ack in response.logs where ack.capped == true && sent.logs.contains(where: { $0.task == ack.task }) {
            logger.info("task \(ack.task): its log reached the master's cap; the rest of its output is not sent")
        }
        guard !response.leases.isEmpty else { return }
        // All held before any starts: a run that ends at once sees the whole stock it came with
        // (whether its finish may wait for company, `Workload.canCoalesce`).
        if await workload.add(response.leases) {
            response.leases.forEach { sink.yield($0) }
        } else {
            // Handed out while the agent left: back at once, no attempt used.
            for lease in response.leases {
                await outbox.releaseUnlaunched(lease.task, epoch: lease.epoch, reason: .shutdown)
            }
        }
    }
}

extension ExchangeRequest {
    static func with(_ reports: ExchangeRequest, claim: ClaimRequest?) -> ExchangeRequest {
        var request = reports
        request.claim = claim
        return request
    }
}

/// How the poller's long-poll ended: the master answered it, it failed (to be tried again after a
/// back-off), or the agent began to leave (a long-poll with a claim) or its pump ended (any).
private enum LongPollEnd: Sendable { case answered, failed, leaving, roomAgain }

/// What the pump is doing, for the poller: it holds no long-poll while the pump has an exchange in
/// flight, a talkback-only one once the pump has been quiet a while, none once the pump has ended.
final class PumpActivity: Sendable {
    private struct State {
        var busy = false
        var ended = false
        var quietSince: ContinuousClock.Instant
    }
    private let state: Mutex<State>
    private let clock: any AgentClock

    init(clock: any AgentClock) {
        self.clock = clock
        state = Mutex(State(quietSince: clock.now))
    }

    func begin() { state.withLock { $0.busy = true } }
    func quiet() {
        let now = clock.now
        state.withLock { $0.busy = false; $0.quietSince = now }
    }
    func end() { state.withLock { $0.ended = true } }

    var ended: Bool { state.withLock { $0.ended } }
    /// How long the pump has had no exchange in flight; nil while it has one.
    var quietFor: Duration? {
        let now = clock.now
        return state.withLock { $0.busy ? nil : now - $0.quietSince }
    }
}

/// What the agent does as it begins to leave (its runs stopped, the master told), which its last
/// word to the master must follow.
final class LeavingWork: Sendable {
    private let task = Mutex<Task<Void, Never>?>(nil)
    func begin(_ work: @escaping @Sendable () async -> Void) { task.withLock { $0 = Task { await work() } } }
    /// Returns once the work begun has ended (at once when none began).
    func finished() async { await task.withLock { $0 }?.value }
}

/// A flag shared between the exchange loops: whether the pump gave up on its last reports.
final class LoopFlag: Sendable {
    private let state = Mutex(false)
    var value: Bool { state.withLock { $0 } }
    func set(_ value: Bool) { state.withLock { $0 = value } }
}
