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
        let reply: ReadableCommands = try await longPoll("GET", APIPath.commands(agent),
                                                         query: ["after": String(after), "wait": String(Int(wait))],
                                                         timeout: timeout)
        return reply.batch
    }

    func report(_ exception: ExceptionReport, agent: AgentID) async throws(ClientError) {
        let _: ExceptionView = try await call("POST", APIPath.exceptions(agent), json: exception)
    }
}

/// A command batch as the agent reads it: a command it cannot read (a kind a newer master added) is
/// left out instead of failing the whole batch, and the batch's `last` still takes the agent's cursor
/// past it, so the channel never sticks on a command this agent does not know (docs/ARCHITECTURE.md §6).
struct ReadableCommands: Decodable {
    var batch: CommandBatch

    private enum CodingKeys: String, CodingKey { case commands, last }

    /// One command, or only its sequence number when the agent cannot read the rest.
    private struct Entry: Decodable {
        var seq: Int64
        var command: AgentCommand?

        private enum CodingKeys: String, CodingKey { case seq }

        init(from decoder: any Decoder) throws {
            seq = try decoder.container(keyedBy: CodingKeys.self).decode(Int64.self, forKey: .seq)
            command = try? AgentCommand(from: decoder)
        }
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let entries = try container.decode([Entry].self, forKey: .commands)
        let last = try container.decode(Int64.self, forKey: .last)
        batch = CommandBatch(commands: entries.compactMap(\.command), last: max(last, entries.map(\.seq).max() ?? last))
    }
}
