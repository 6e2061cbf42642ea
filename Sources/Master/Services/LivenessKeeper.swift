import Foundation
import Logging
import ServiceLifecycle

/// Keeps the agents whose long-polls this master holds online: every heartbeat interval (a third
/// of the lease timeout), one statement moves their `last_seen` to now. An idle agent then heartbeats only to report its
/// host's figures (`HeartbeatService.idleInterval`), not to prove it is alive. Each master keeps its
/// own agents alive, so this holds behind a load balancer too.
struct LivenessKeeper: Service {
    let store: any Store
    let polls: HeldPolls
    let config: MasterConfig
    let logger: Logger

    /// As often as the agents it stands in for would heartbeat.
    var period: Duration { .milliseconds(Int(config.heartbeatInterval * 1000)) }

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let live = polls.live
            if !live.isEmpty {
                do {
                    try await store.keepAlive(Array(live), now: store.clock.now())
                } catch {
                    logger.warning("keeping \(live.count) long-polling agent(s) online failed: \(error)")
                }
            }
            try? await Task.sleep(for: period)
        }
    }
}
