/// Wakes long-polling claimers the moment work may have become available
/// (a submission, a task finished or requeued), so an idle farm starts a task
/// in milliseconds rather than after a polling period. It is only a hint:
/// a woken claimer asks the store again, so a missed or spurious wake-up costs
/// latency, never correctness.
public actor WakeSignal {
    public private(set) var generation: UInt64 = 0
    /// Set when the master shuts down: long-polls answer at once so the server can drain.
    public private(set) var isClosed = false
    private var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    private var nextWaiter: UInt64 = 0

    public init() {}

    public func notifyAll() {
        generation &+= 1
        let woken = waiters
        waiters.removeAll()
        for continuation in woken.values { continuation.resume() }
    }

    public func close() {
        isClosed = true
        notifyAll()
    }

    /// Returns when the generation has moved past `seen`, or after `timeout`.
    public func wait(since seen: UInt64, timeout: Duration) async {
        guard generation == seen, timeout > .zero, !isClosed else { return }
        let id = nextWaiter
        nextWaiter &+= 1
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            await self?.expire(id)
        }
        await withCheckedContinuation { continuation in
            waiters[id] = continuation
        }
        timer.cancel()
    }

    private func expire(_ id: UInt64) {
        waiters.removeValue(forKey: id)?.resume()
    }
}
