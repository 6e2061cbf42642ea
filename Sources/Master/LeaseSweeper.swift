import Foundation
import Logging
import ServiceLifecycle

/// Marks silent agents offline and requeues the tasks whose leases ran out.
/// Safe on every master at once: each move is a conditional update.
public struct LeaseSweeper: Service {
    let store: any Store
    let config: MasterConfig
    /// The first wakes claimers; all are closed on shutdown so that long-polls answer at once.
    let wakes: [WakeSignal]
    let logger: Logger

    public init(store: any Store, config: MasterConfig, wakes: [WakeSignal], logger: Logger) {
        self.store = store
        self.config = config
        self.wakes = wakes
        self.logger = logger
    }

    /// Sweeps often enough that an expired lease is noticed within a tenth of the timeout.
    var period: Duration { .milliseconds(Int(max(100, min(1000, config.leaseTimeout * 100)))) }

    public func run() async throws {
        var outage = false
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let now = Date()
                if outage {
                    // While the database was away every heartbeat failed (503) through no fault of the
                    // agents: give every lease the grace a restarted master gives
                    // (docs/ARCHITECTURE.md §3) before expiring any, or the first sweep would requeue
                    // the whole farm's work.
                    try await store.extendLeases(until: now.addingTimeInterval(config.leaseTimeout))
                    outage = false
                    logger.notice("database reachable again: leases extended by the lease timeout")
                }
                let result = try await store.sweep(now: now, silentSince: now.addingTimeInterval(-config.leaseTimeout))
                if result != SweepResult() {
                    logger.info("lease sweep: \(result.agentsMarkedOffline) agent(s) offline, \(result.tasksRequeued) task(s) requeued, \(result.tasksFailed) failed")
                }
                if result.tasksRequeued > 0 { await wakes.first?.notifyAll() }
            } catch where StoreFailure.isUnavailable(error) {
                if !outage { logger.warning("lease sweep: the database is unreachable: \(error)") }
                outage = true
            } catch {
                logger.error("lease sweep failed: \(error)")
            }
            try? await Task.sleep(for: period)
        }
        // The HTTP server stops after this service: let its long-polls answer now.
        for wake in wakes { await wake.close() }
    }
}
