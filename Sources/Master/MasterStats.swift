import Foundation
import Synchronization

/// Counters about the master itself (for `/v1/master` and `/metrics`).
public final class MasterStats: Sendable {
    public let startedAt = Date()
    private let unhandled = Atomic<Int>(0)
    private let claims = Atomic<Int>(0)
    private let steals = Atomic<Int>(0)

    public init() {}

    func recordUnhandled() { unhandled.add(1, ordering: .relaxed) }
    func recordClaim() { claims.add(1, ordering: .relaxed) }
    func recordSteals(_ count: Int) { steals.add(count, ordering: .relaxed) }
    public var tasksStolen: Int { steals.load(ordering: .relaxed) }
    public var unhandledErrors: Int { unhandled.load(ordering: .relaxed) }
    public var claimsAnswered: Int { claims.load(ordering: .relaxed) }
}
