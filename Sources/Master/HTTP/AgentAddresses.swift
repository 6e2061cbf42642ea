import PaddockProtocol
import Synchronization

/// The address each agent last called this master from (enroll, heartbeat, claim), shown in
/// `AgentView.address`. Held in memory on purpose: it is an observation, not farm state. With
/// several masters each shows the address it last saw (an agent's calls may reach any of them),
/// and a restarted master learns it again at the next heartbeat; both are fine for what it is for,
/// telling an operator which host an agent is.
public final class AgentAddresses: Sendable {
    private let seen = Mutex<[AgentID: String]>([:])

    public init() {}

    func record(_ agent: AgentID, _ address: IPAddress?) {
        guard let address else { return }
        let text = address.description
        seen.withLock { $0[agent] = text }
    }

    func forget(_ agent: AgentID) { _ = seen.withLock { $0.removeValue(forKey: agent) } }

    func address(of agent: AgentID) -> String? { seen.withLock { $0[agent] } }

    /// The view with the address this master saw, if any.
    func annotate(_ view: AgentView) -> AgentView {
        var view = view
        view.address = address(of: view.id)
        return view
    }
}
