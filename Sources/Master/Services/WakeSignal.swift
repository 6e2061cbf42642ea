import NIOCore
import NIOPosix
import Synchronization

/// What a wake-up is about: each has its own `WakeSignal` on a master.
public enum WakeChannel: String, Sendable, CaseIterable {
    /// Work may have become available (a submission, a task finished or requeued).
    case claims
    /// A talkback command was posted.
    case commands
    /// Log bytes arrived (for `logs -f` followers).
    case logs
    /// What a dashboard shows changed: a task's state, progress or status, a job, an agent's state
    /// (`GET /v1/changes`).
    case changes
}

/// Carries wake-ups to the other masters sharing the database (none with SQLite).
public protocol WakeRelay: Sendable {
    /// Tells the other masters, with what became claimable on the claims channel (`anything`
    /// elsewhere); returns at once (delivery is best-effort: wake-ups are hints).
    func publish(_ channel: WakeChannel, work: NewWork)
    /// Delivers the other masters' wake-ups until cancelled, reconnecting as needed.
    func listen(_ deliver: @escaping @Sendable (WakeChannel, NewWork) async -> Void) async throws
}

/// Wakes long-polling claimers the moment work may have become available
/// (a submission, a task finished or requeued), so an idle farm starts a task
/// in milliseconds rather than after a polling period. It is only a hint:
/// a woken claimer asks the store again, so a missed or spurious wake-up costs
/// latency, never correctness. With a relay, the other masters are woken too.
/// On the claims signal a notification is directed: it carries what became
/// claimable (`NewWork`) and wakes only the held claims it fits (`WakePlan`).
public actor WakeSignal {
    public nonisolated let channel: WakeChannel
    nonisolated let relay: (any WakeRelay)?
    public private(set) var generation: UInt64 = 0
    /// Set when the master shuts down: long-polls answer at once so the server can drain.
    public private(set) var isClosed = false
    /// The waiters by registration, so oldest first in id order, with what each waits for.
    private var waiters: [UInt64: (waiter: Waiter, interest: WakeInterest)] = [:]
    private var nextWaiter: UInt64 = 0
    /// How many waiters notifications have woken (not their timeouts or supersessions): on the claims
    /// signal, the claim rounds that wake-ups cost (`paddock_claim_wakeups_total`).
    public private(set) var woken: UInt64 = 0
    /// Per key (an agent): how often its waits were superseded, and who waits under it.
    private var superseded: [Int64: UInt64] = [:]
    private var keyed: [Int64: Set<UInt64>] = [:]

    public init(_ channel: WakeChannel = .claims, relay: (any WakeRelay)? = nil) {
        self.channel = channel
        self.relay = relay
    }

    /// Wakes this master's waiters and tells the other masters.
    public func notifyAll() {
        notify(.anything)
    }

    /// Wakes the waiters `work` concerns (`WakePlan`) and tells the other masters, which wake theirs
    /// the same way. Nothing new: no wake-up.
    public func notify(_ work: NewWork) {
        guard !work.isEmpty else { return }
        notifyLocally(work)
        relay?.publish(channel, work: work)
    }

    /// Wakes this master's waiters only (a wake-up that came from another master).
    public func notifyLocally(_ work: NewWork = .anything) {
        generation &+= 1
        // A waiter fired already (a handoff's delivery, its timeout) is on its way out: it takes none
        // of the wake-ups the work is worth.
        let registered = waiters.keys.sorted().compactMap { id in
            waiters[id].flatMap { $0.waiter.isFired ? nil : (id: id, interest: $0.interest) }
        }
        for id in WakePlan.choose(work, among: registered) { fire(id) }
    }

    public func close() {
        isClosed = true
        let all = waiters
        waiters.removeAll()
        for (waiter, _) in all.values { waiter.fire() }
    }

    /// The waiters registered now (a test's way to know a long-poll is held).
    public var waiting: Int { waiters.count }

    private func fire(_ id: UInt64) {
        guard let (waiter, _) = waiters.removeValue(forKey: id) else { return }
        woken &+= 1
        waiter.fire()
    }

    /// How often the waits under `key` were superseded so far.
    public func supersessions(_ key: Int64) -> UInt64 { superseded[key] ?? 0 }

    /// Ends the waits under `key` at once (an agent's newer exchange supersedes its long-poll,
    /// which then answers without claiming), without waking anyone else. Returns the new count, the
    /// `keySeen` of the caller's own wait: one step, so of two exchanges arriving together the later
    /// one always supersedes the earlier.
    @discardableResult
    public func supersede(_ key: Int64) -> UInt64 {
        superseded[key, default: 0] &+= 1
        for id in keyed.removeValue(forKey: key) ?? [] { waiters.removeValue(forKey: id)?.waiter.fire() }
        return superseded[key] ?? 0
    }

    /// Returns when a notification for `interest` came (or, before the wait began, the generation had
    /// moved past `seen`), or after `timeout`, or when the calling task is cancelled; with a `key`,
    /// also when the waits under it were superseded after `keySeen`.
    public func wait(since seen: UInt64, timeout: Duration, key: Int64? = nil, keySeen: UInt64 = 0,
                     interest: WakeInterest = .everything) async {
        await wait(since: seen, timeout: timeout, key: key, keySeen: keySeen, interest: interest, or: nil, handoff: nil)
    }

    /// Returns at the first of: a notification here for `interest` (or this signal's generation had
    /// moved past `seen`), its waits under `key` superseded after `keySeen`, `other`'s generation
    /// moved past `otherSeen`, `timeout`. (An agent's held exchange waits for work and for its
    /// talkback commands at once.)
    public func wait(since seen: UInt64, timeout: Duration, key: Int64, keySeen: UInt64, interest: WakeInterest,
                     or other: WakeSignal, since otherSeen: UInt64) async {
        await wait(since: seen, timeout: timeout, key: key, keySeen: keySeen, interest: interest, or: (other, otherSeen),
                   handoff: nil)
    }

    /// One waiter, registered here and (with `other`) there too, woken by whichever fires first.
    /// No task of its own: a held long-poll costs the master its connection's task and this, and
    /// its timeout is a timer on an event loop, not a sleeping task (each task keeps kilobytes).
    /// With `handoff` (a held exchange's registration), it also returns when a submission takes it.
    func wait(since seen: UInt64, timeout: Duration, key: Int64?, keySeen: UInt64, interest: WakeInterest,
              or other: (signal: WakeSignal, seen: UInt64)?, handoff: Handoff?) async {
        guard generation == seen, timeout > .zero, !isClosed, !Task.isCancelled else { return }
        if let key, supersessions(key) != keySeen { return }
        let waiter = Waiter()
        handoff?.onTaken { waiter.fire() }
        let id = add(waiter, key: key, interest: interest)
        let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .nanoseconds(timeout.nanoseconds)) {
            waiter.fire()
        }
        // Off this actor meanwhile: a wake-up here before the waiter suspends is kept by it (`fire`
        // before `suspend` makes `suspend` return at once).
        let there = await other?.signal.add(waiter, ifStill: other?.seen ?? 0)
        if other != nil, there == nil { waiter.fire() }
        await withTaskCancellationHandler {
            await waiter.suspend()
        } onCancel: {
            waiter.fire()
        }
        timer.cancel()
        remove(id, key: key)
        if let there { await other?.signal.remove(there, key: nil) }
    }

    private func add(_ waiter: Waiter, key: Int64?, interest: WakeInterest) -> UInt64 {
        let id = nextWaiter
        nextWaiter &+= 1
        waiters[id] = (waiter, interest)
        if let key { keyed[key, default: []].insert(id) }
        return id
    }

    /// Adds `waiter` unless the generation has moved past `seen` (or the signal closed): nil then.
    private func add(_ waiter: Waiter, ifStill seen: UInt64) -> UInt64? {
        guard generation == seen, !isClosed else { return nil }
        return add(waiter, key: nil, interest: .everything)
    }

    private func remove(_ id: UInt64, key: Int64?) {
        waiters[id] = nil
        if let key {
            keyed[key]?.remove(id)
            if keyed[key]?.isEmpty == true { keyed[key] = nil }
        }
    }
}

/// One suspended wait: fired at most once, by a wake-up, a supersession, its timer or its task's
/// cancellation, whichever comes first, and possibly before it suspends.
private final class Waiter: Sendable {
    private enum State {
        case pending
        case fired
        case suspended(CheckedContinuation<Void, Never>)
    }
    private let state = Mutex(State.pending)

    var isFired: Bool {
        state.withLock { state in
            if case .fired = state { return true }
            return false
        }
    }

    func fire() {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            defer { state = .fired }
            if case .suspended(let continuation) = state { return continuation }
            return nil
        }
        continuation?.resume()
    }

    func suspend() async {
        await withCheckedContinuation { continuation in
            let fired = state.withLock { state -> Bool in
                if case .fired = state { return true }
                state = .suspended(continuation)
                return false
            }
            if fired { continuation.resume() }
        }
    }
}

extension Duration {
    /// The whole duration in nanoseconds (saturating).
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : whole &+ attoseconds / 1_000_000_000
    }
}
