import PaddockProtocol
import Synchronization

/// Numbers this agent process's exchanges (`ExchangeRequest.number`) and knows which are still
/// open (sent, neither answered nor failed). A heartbeat says up to which exchange every one is
/// closed (`HeartbeatRequest.answered`), taken before the leases it lists: a lease granted by one
/// of those that the list lacks never reached the agent, and the master gives it back at once.
/// Without this, a lease whose answer was lost with a master killed mid-exchange held the agent's
/// room, idle, until its lease timed out, and its task ran again as an expired one.
final class ExchangeLedger: Sendable {
    /// Drawn once per process: a restarted agent's numbers are never taken for its last run's.
    let incarnation: Int64
    private struct State {
        var next: Int64 = 1
        var open: Set<Int64> = []
    }
    private let state = Mutex(State())
    /// Poked when an exchange fails: its answer may have granted leases the agent never got, which
    /// hold its room on the master until a heartbeat gives them back.
    let failures: Nudge

    init(clock: any AgentClock, incarnation: Int64 = .random(in: 1...ExchangeNumber.limit)) {
        self.incarnation = incarnation
        failures = Nudge(clock: clock)
    }

    /// The number of an exchange about to be sent; open until `close`.
    func open() -> ExchangeNumber {
        state.withLock { state in
            let sequence = state.next
            state.next += 1
            state.open.insert(sequence)
            return ExchangeNumber(incarnation: incarnation, sequence: sequence)
        }
    }

    /// The exchange was answered (and its leases added to the workload) or failed.
    func close(_ number: ExchangeNumber, failed: Bool) {
        state.withLock { _ = $0.open.remove(number.sequence) }
        if failed { failures.poke() }
    }

    /// Some exchange is sent and not yet answered: an idle agent's long-poll, once its start-up is over.
    var hasOneOpen: Bool { state.withLock { !$0.open.isEmpty } }

    /// Every exchange numbered up to this one is closed.
    var answered: ExchangeNumber {
        state.withLock { state in
            ExchangeNumber(incarnation: incarnation, sequence: (state.open.min() ?? state.next) - 1)
        }
    }
}

/// What a heartbeat tells the master the agent holds: its leases (runs that ended but whose end the
/// master has not acknowledged among them) and up to which exchange every one was answered. The
/// number is read first: a lease granted by an exchange it covers is in the workload by then, so a
/// lease the list lacks never reached the agent.
struct HeldLeases {
    let leases: [HeldLease]
    let answered: ExchangeNumber

    static func now(_ workload: Workload, _ outbox: Outbox) async -> HeldLeases {
        let answered = workload.exchanges.answered
        return HeldLeases(leases: await workload.leases + outbox.unacknowledged, answered: answered)
    }
}
