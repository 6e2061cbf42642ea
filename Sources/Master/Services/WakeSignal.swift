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
    /// Tells the other masters; returns at once (delivery is best-effort: wake-ups are hints).
    func publish(_ channel: WakeChannel)
    /// Delivers the other masters' wake-ups until cancelled, reconnecting as needed.
    func listen(_ deliver: @escaping @Sendable (WakeChannel) async -> Void) async throws
}

/// Wakes long-polling claimers the moment work may have become available
/// (a submission, a task finished or requeued), so an idle farm starts a task
/// in milliseconds rather than after a polling period. It is only a hint:
/// a woken claimer asks the store again, so a missed or spurious wake-up costs
/// latency, never correctness. With a relay, the other masters are woken too.
public actor WakeSignal {
    public nonisolated let channel: WakeChannel
    nonisolated let relay: (any WakeRelay)?
    public private(set) var generation: UInt64 = 0
    /// Set when the master shuts down: long-polls answer at once so the server can drain.
    public private(set) var isClosed = false
    private var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    private var nextWaiter: UInt64 = 0
    /// Per key (an agent): how often its waits were superseded, and who waits under it.
    private var superseded: [Int64: UInt64] = [:]
    private var keyed: [Int64: Set<UInt64>] = [:]

    public init(_ channel: WakeChannel = .claims, relay: (any WakeRelay)? = nil) {
        self.channel = channel
        self.relay = relay
    }

    /// Wakes this master's waiters and tells the other masters.
    public func notifyAll() {
        notifyLocally()
        relay?.publish(channel)
    }

    /// Wakes this master's waiters only (a wake-up that came from another master).
    public func notifyLocally() {
        generation &+= 1
        let woken = waiters
        waiters.removeAll()
        for continuation in woken.values { continuation.resume() }
    }

    public func close() {
        isClosed = true
        notifyLocally()
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
        for id in keyed.removeValue(forKey: key) ?? [] { waiters.removeValue(forKey: id)?.resume() }
        return superseded[key] ?? 0
    }

    /// Returns when the generation has moved past `seen`, or after `timeout`, or when the calling
    /// task is cancelled; with a `key`, also when the waits under it were superseded after `keySeen`.
    public func wait(since seen: UInt64, timeout: Duration, key: Int64? = nil, keySeen: UInt64 = 0) async {
        guard generation == seen, timeout > .zero, !isClosed, !Task.isCancelled else { return }
        if let key, supersessions(key) != keySeen { return }
        let id = nextWaiter
        nextWaiter &+= 1
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            await self?.expire(id)
        }
        if let key { keyed[key, default: []].insert(id) }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                // On the actor, as `expire` is: a cancellation either came before this check, or its
                // `expire` runs after the waiter is in place.
                if Task.isCancelled { return continuation.resume() }
                waiters[id] = continuation
            }
        } onCancel: {
            Task { await self.expire(id) }
        }
        if let key {
            keyed[key]?.remove(id)
            if keyed[key]?.isEmpty == true { keyed[key] = nil }
        }
        timer.cancel()
    }

    /// Returns at the first of: `first`'s generation moved past `firstSeen` or its waits under `key`
    /// were superseded after `keySeen`, `second`'s generation moved past `secondSeen`, `timeout`.
    /// (An agent's held exchange waits for work and for its talkback commands at once.)
    public static func wait(_ first: WakeSignal, since firstSeen: UInt64, key: Int64, keySeen: UInt64,
                            or second: WakeSignal, since secondSeen: UInt64, timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await first.wait(since: firstSeen, timeout: timeout, key: key, keySeen: keySeen) }
            group.addTask { await second.wait(since: secondSeen, timeout: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    private func expire(_ id: UInt64) {
        waiters.removeValue(forKey: id)?.resume()
    }
}
