import NIOCore
import PaddockProtocol
import Synchronization

/// The agents' long-polls this master holds now, each with its connection. An agent holding one is
/// alive (its connection is open): `LivenessKeeper` keeps such agents' `last_seen` fresh, so an idle
/// agent need not heartbeat to stay online and a farm of idle agents costs the master few requests.
/// A connection its client closed (an agent killed: its kernel closes the socket) no longer counts,
/// though the route holding its request answers only when its wait ends (`ConnectionWatch`).
final class HeldPolls: Sendable {
    private struct Entry {
        var agent: AgentID
        /// Nil without one in the pipeline (in-process tests): counted as open.
        var watch: ConnectionWatch?
    }
    private struct State {
        var next: UInt64 = 0
        var held: [UInt64: Entry] = [:]
    }
    private let state = Mutex(State())

    /// Notes a long-poll of `agent` held on `channel` from now until `release` is called with the result.
    func hold(_ agent: AgentID, on channel: any Channel) async -> UInt64 {
        let watch = try? await channel.pipeline.handler(type: ConnectionWatch.self).get()
        return state.withLock { state in
            state.next &+= 1
            state.held[state.next] = Entry(agent: agent, watch: watch)
            return state.next
        }
    }

    func release(_ ticket: UInt64) {
        _ = state.withLock { $0.held.removeValue(forKey: ticket) }
    }

    /// The agents with a long-poll held on a connection their side has not closed.
    var live: Set<AgentID> {
        let entries = state.withLock { Array($0.held.values) }
        return Set(entries.filter { !($0.watch?.inputClosed ?? false) }.map(\.agent))
    }
}
