import Synchronization

/// The agents' capacities as a submission's placement warnings read them, kept for a second: every
/// submission asks, and the read (a hop to a reader connection and back) was about a seventh of an
/// idle farm's submission round trip. A warning is said only after a fresh read confirms it, so an
/// agent enrolled since is counted; one deleted or disabled in the last second can at worst keep a
/// warning back for that second.
final class AgentCapacityCache: Sendable {
    static let lifetime: Duration = .seconds(1)
    private let kept = Mutex<(at: ContinuousClock.Instant, agents: [AgentCapacity])?>(nil)

    func capacities(_ store: any Store, fresh: Bool) async throws -> [AgentCapacity] {
        if !fresh, let kept = kept.withLock({ $0 }), ContinuousClock.now - kept.at < Self.lifetime {
            return kept.agents
        }
        let started = ContinuousClock.now
        let read = try await store.agentCapacities()
        kept.withLock { $0 = (started, read) }
        return read
    }
}
