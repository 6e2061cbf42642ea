import Foundation
import Logging
import ServiceLifecycle

/// Marks silent agents offline and requeues the tasks whose leases ran out.
/// Safe on every master at once: each move is a conditional update.
public struct LeaseSweeper: Service {
    let store: any Store
    let config: MasterConfig
    /// Woken when a sweep requeues tasks: waiting claims may take them.
    let claims: WakeSignal
    /// Woken when a sweep changed anything: the dashboard's feed.
    let changes: WakeSignal
    /// Every long-poll's signal, closed on shutdown so that long-polls answer at once.
    let closing: [WakeSignal]
    let logger: Logger

    public init(store: any Store, config: MasterConfig, claims: WakeSignal, changes: WakeSignal,
                closing: [WakeSignal], logger: Logger) {
        self.store = store
        self.config = config
        self.claims = claims
        self.changes = changes
        self.closing = closing
        self.logger = logger
    }

    /// Sweeps often enough that an expired lease is noticed within a tenth of the timeout.
    var period: Duration { .milliseconds(Int(max(100, min(1000, config.leaseTimeout * 100)))) }

    /// A jump of the database's clock larger than this, between two readings a sweep apart, is a step
    /// (an operator, NTP), not drift.
    static let stepTolerance: TimeInterval = 1

    public func run() async throws {
        var outage = false
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let step = try await store.syncClock()
                let now = store.clock.now()
                if outage {
                    // While the database was away every heartbeat failed (503) through no fault of the
                    // agents: leases get the grace a restarted master gives (docs/ARCHITECTURE.md §3)
                    // before any expires, or the first sweep would requeue the whole farm's work. One
                    // grace per outage: the first master back gives it, the others see it given.
                    if let given = try await store.grantGrace(leaseTimeout: config.leaseTimeout, now: now) {
                        logger.notice("database reachable again after \(Int(given.rounded(.up))) s: live leases are given that time back")
                    }
                    outage = false
                }
                if step > Self.stepTolerance {
                    // The database's clock jumped ahead: leases granted before it would all look expired.
                    try await store.extendLeases(until: now.addingTimeInterval(config.leaseTimeout))
                    logger.warning("the database's clock jumped \(Int(step)) s ahead: live leases get the lease timeout again")
                } else if step < -Self.stepTolerance {
                    logger.warning("the database's clock jumped \(Int(-step)) s back: leases granted before last longer by as much")
                }
                let result = try await store.sweep(now: now, silentSince: now.addingTimeInterval(-config.leaseTimeout))
                if result != SweepResult() {
                    logger.info("lease sweep: \(result.agentsMarkedOffline) agent(s) offline, \(result.tasksRequeued) task(s) requeued, \(result.tasksFailed) failed")
                }
                if result.tasksRequeued > 0 { await claims.notifyAll() }
                if result != SweepResult() { await changes.notifyAll() }
            } catch where StoreFailure.isUnavailable(error) {
                if !outage { logger.warning("lease sweep: the database is unreachable: \(error)") }
                outage = true
            } catch {
                logger.error("lease sweep failed: \(error)")
            }
            try? await Task.sleep(for: period)
        }
        // The HTTP server stops after this service: let its long-polls answer now.
        for wake in closing { await wake.close() }
    }
}
