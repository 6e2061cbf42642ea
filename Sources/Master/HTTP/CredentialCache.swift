import Foundation
import PaddockProtocol
import Synchronization

/// Agents' credentials the exchange route has seen, by the hash the master keeps of each: the
/// exchange, every agent's hottest request, then skips the read transaction that checks it, and
/// checks it again inside its own write transaction instead (`Store.exchange(credential:)`), so a
/// credential reset meanwhile is refused there (401) just as before, and leaves the cache.
final class CredentialCache: Sendable {
    /// Entries past this many clear the cache: a farm has far fewer agents, a flood of forged
    /// credentials never gets in (only checked ones do).
    static let capacity = 8_192
    private let entries = Mutex<[String: AgentIdentity]>([:])

    func identity(hash: String) -> AgentIdentity? { entries.withLock { $0[hash] } }

    func remember(_ identity: AgentIdentity, hash: String) {
        entries.withLock { entries in
            if entries.count >= Self.capacity { entries.removeAll() }
            entries[hash] = identity
        }
    }

    func forget(hash: String) { _ = entries.withLock { $0.removeValue(forKey: hash) } }
}
