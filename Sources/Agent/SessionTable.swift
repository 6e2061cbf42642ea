import Foundation
import Logging
import PaddockProtocol

/// The agent's OpenJD sessions, one per (job, step) it runs tasks of (`SessionKey`).
///
/// The first task of a key enters the session (`join` answers `.enter`; it then says `entered` or
/// `enterFailed`); tasks of a key being entered wait for it; tasks of an open session use it. When
/// no task of a session runs any more, it is exited after `linger` unless a task of it comes back
/// first, at once when the agent drains or leaves (`close`). A session being exited is waited for,
/// and the next task of its key enters a new one.
actor SessionTable {
    enum Join: Sendable {
        /// This task enters the session; it must call `entered` or `enterFailed`.
        case enter
        case open(OpenSession)
    }

    private enum State {
        case entering
        case open(OpenSession)
        case exiting
    }

    private struct Entry {
        var state: State
        /// Tasks of the session that joined it and have not left.
        var running: Int
        /// Counts the session's idle spells: a linger timer acts only on the spell it was set for.
        var idleSpell = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    let scripts: SessionScripts
    /// How long an idle session stays open for more of its tasks.
    let linger: Duration
    let clock: any AgentClock
    private var entries: [SessionKey: Entry] = [:]
    /// Draining or leaving: an idle session is exited at once.
    private var closing = false
    private var exits: [SessionKey: Task<Void, Never>] = [:]

    init(scripts: SessionScripts, linger: Duration, clock: any AgentClock) {
        self.scripts = scripts
        self.linger = linger
        self.clock = clock
    }

    static func make(launcher: any ProcessLauncher, config: AgentConfig, clock: any AgentClock, logger: Logger) -> SessionTable {
        SessionTable(scripts: SessionScripts(launcher: launcher, config: config, clock: clock, logger: logger),
                     linger: config.sessionLinger, clock: clock)
    }

    /// The sessions' directories, under the agent's work dir.
    static let directory = "sessions"

    /// How long a stopping agent waits for its sessions' `onExit`s, after its runs ended: within
    /// `Agent.stopDeadline` with the runs' kill grace (5 s) and the last reports.
    static let shutdownBound: Duration = .seconds(3)

    /// Joins the session of `key`: enter it, or use it once open (waiting while it is being entered
    /// or exited).
    func join(_ key: SessionKey) async -> Join {
        while true {
            guard var entry = entries[key] else {
                entries[key] = Entry(state: .entering, running: 1)
                return .enter
            }
            if case .open(let session) = entry.state {
                entry.running += 1
                entry.idleSpell += 1  // a linger timer set before is void
                entries[key] = entry
                return .open(session)
            }
            await withCheckedContinuation { continuation in
                if entries[key] != nil { entries[key]?.waiters.append(continuation) } else { continuation.resume() }
            }
        }
    }

    /// The joining task entered the session: it is open for the others.
    func entered(_ session: OpenSession) {
        entries[session.key]?.state = .open(session)
        wake(session.key)
    }

    /// Entering failed or was stopped (what was entered is exited by the task): the session is not
    /// kept, and the next task of the key tries again.
    func enterFailed(_ key: SessionKey) {
        let waiters = entries.removeValue(forKey: key)?.waiters ?? []
        waiters.forEach { $0.resume() }
    }

    /// A task of the session ended. The last one leaves it idle: exited after the linger, or at once
    /// when the agent is closing.
    func leave(_ key: SessionKey) {
        guard var entry = entries[key] else { return }
        entry.running = max(0, entry.running - 1)
        entries[key] = entry
        guard entry.running == 0, case .open = entry.state else { return }
        if closing {
            startExit(key)
            return
        }
        let spell = entry.idleSpell
        Task { [clock, linger] in  // isolated to the table, as this method is
            try? await clock.sleep(for: linger)
            self.lingered(key, spell: spell)
        }
    }

    private func lingered(_ key: SessionKey, spell: Int) {
        guard let entry = entries[key], entry.running == 0, entry.idleSpell == spell, case .open = entry.state else { return }
        startExit(key)
    }

    private func startExit(_ key: SessionKey) {
        guard case .open(let session)? = entries[key]?.state else { return }
        entries[key]?.state = .exiting
        scripts.logger.info("session \(key): exiting its environments")
        exits[key] = Task {
            await scripts.exit(session.plan, key: key, owner: session.owner, base: session.base, levels: session.levels,
                               secrets: session.secrets, reporter: session.reporter, output: scripts.logLines(key))
            WorkDirectory.remove(session.directory)
            self.exited(key)
        }
    }

    private func exited(_ key: SessionKey) {
        exits.removeValue(forKey: key)
        let waiters = entries.removeValue(forKey: key)?.waiters ?? []
        waiters.forEach { $0.resume() }
    }

    private func wake(_ key: SessionKey) {
        let waiters = entries[key]?.waiters ?? []
        entries[key]?.waiters = []
        waiters.forEach { $0.resume() }
    }

    /// The agent drains or leaves: idle sessions are exited now, the others after their last task.
    func close() {
        closing = true
        for (key, entry) in entries where entry.running == 0 { startExit(key) }
    }

    /// The agent takes work again (undrained): idle sessions linger again.
    func reopen() { closing = false }

    /// At the agent's end, once its runs are over: exits every open session and waits for the exits,
    /// at most `bound`; then stops what still runs of them (SIGTERM, SIGKILL after `grace`) and
    /// starts no further `onExit`.
    func closeAll(within bound: Duration, grace: Duration) async {
        close()
        let pending = Array(exits.values)
        guard !pending.isEmpty else { return }
        // A watchdog, not a task group racing the exits: awaiting an exit cannot be cancelled, and a
        // group waits for all its children before it returns.
        let watchdog = Task { [clock, scripts] in
            try await clock.sleep(for: bound)
            scripts.logger.warning("sessions' onExit still running after \(bound): stopping them")
            await withDiscardingTaskGroup { group in
                for process in scripts.running.stop() {
                    group.addTask { await process.terminate(grace: grace, clock: clock) }
                }
            }
        }
        for exit in pending { await exit.value }
        watchdog.cancel()
    }
}
