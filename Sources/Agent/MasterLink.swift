import Foundation
import PaddockClient
import PaddockProtocol

/// The calls the agent's services make to the master: enrollment, the exchange (docs/ARCHITECTURE.md
/// §4, which also brings the talkback commands, §6), heartbeats (§3) and exception reports. The real
/// one is `MasterClient`; the agent's tests answer these from scripts. One call per exchange or
/// heartbeat: nothing here is called per chunk of a task's output.
protocol MasterLink: Sendable {
    /// The same master with another bearer token (the agent's own credential once it has one).
    func with(token: String) -> Self
    func enroll(_ request: EnrollRequest) async throws(ClientError) -> EnrollResponse
    /// One exchange; held at the master up to its `wait` (a long-poll) when that is above 0.
    func exchange(_ request: ExchangeRequest, agent: AgentID, timeout: Double) async throws(ClientError) -> ExchangeResponse
    func heartbeat(_ beat: HeartbeatRequest, agent: AgentID, timeout: Double) async throws(ClientError) -> HeartbeatResponse
    func report(_ exception: ExceptionReport, agent: AgentID) async throws(ClientError)
}

extension MasterClient: MasterLink {
    func enroll(_ request: EnrollRequest) async throws(ClientError) -> EnrollResponse {
        try await call("POST", APIPath.agents, json: request)
    }

    func exchange(_ request: ExchangeRequest, agent: AgentID, timeout: Double) async throws(ClientError) -> ExchangeResponse {
        if request.wait > 0 {
            return try await longPoll("POST", APIPath.exchange(agent), json: request, timeout: timeout)
        }
        return try await call("POST", APIPath.exchange(agent), json: request, timeout: timeout)
    }

    func heartbeat(_ beat: HeartbeatRequest, agent: AgentID, timeout: Double) async throws(ClientError) -> HeartbeatResponse {
        try await call("PUT", APIPath.heartbeat(agent), json: beat, timeout: timeout)
    }

    func report(_ exception: ExceptionReport, agent: AgentID) async throws(ClientError) {
        let _: ExceptionView = try await call("POST", APIPath.exceptions(agent), json: exception)
    }
}
