import Foundation
import PaddockClient
import PaddockProtocol

/// The calls the agent's services make to the master: enrollment, the exchange (docs/ARCHITECTURE.md
/// §4), heartbeats (§3), the talkback long-poll (§6) and exception reports. The real one is
/// `MasterClient`; the agent's tests answer these from scripts. One call per exchange, heartbeat or
/// command batch: nothing here is called per chunk of a task's output.
protocol MasterLink: Sendable {
    /// The same master with another bearer token (the agent's own credential once it has one).
    func with(token: String) -> Self
    func enroll(_ request: EnrollRequest) async throws(ClientError) -> EnrollResponse
    /// One exchange; held at the master up to its claim's `wait` (a long-poll) when that is above 0.
    func exchange(_ request: ExchangeRequest, agent: AgentID, timeout: Double) async throws(ClientError) -> ExchangeResponse
    func heartbeat(_ beat: HeartbeatRequest, agent: AgentID, timeout: Double) async throws(ClientError) -> HeartbeatResponse
    /// The commands after `after`, the master waiting up to `wait` seconds for one.
    func commands(agent: AgentID, after: Int64, wait: Double, timeout: Double) async throws(ClientError) -> CommandBatch
    func report(_ exception: ExceptionReport, agent: AgentID) async throws(ClientError)
}

extension MasterClient: MasterLink {
    func enroll(_ request: EnrollRequest) async throws(ClientError) -> EnrollResponse {
        try await call("POST", APIPath.agents, json: request)
    }

    func exchange(_ request: ExchangeRequest, agent: AgentID, timeout: Double) async throws(ClientError) -> ExchangeResponse {
        if (request.claim?.wait ?? 0) > 0 {
            return try await longPoll("POST", APIPath.exchange(agent), json: request, timeout: timeout)
        }
        return try await call("POST", APIPath.exchange(agent), json: request, timeout: timeout)
    }

    func heartbeat(_ beat: HeartbeatRequest, agent: AgentID, timeout: Double) async throws(ClientError) -> HeartbeatResponse {
        try await call("PUT", APIPath.heartbeat(agent), json: beat, timeout: timeout)
    }

    func commands(agent: AgentID, after: Int64, wait: Double, timeout: Double) async throws(ClientError) -> CommandBatch {
        try await longPoll("GET", APIPath.commands(agent), query: ["after": String(after), "wait": String(Int(wait))],
                           timeout: timeout)
    }

    func report(_ exception: ExceptionReport, agent: AgentID) async throws(ClientError) {
        let _: ExceptionView = try await call("POST", APIPath.exceptions(agent), json: exception)
    }
}
