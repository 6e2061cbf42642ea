import Foundation
import PaddockMaster
import PaddockProtocol
import Testing

/// The agent is told when a run's log reaches the master's cap (issue 16): the exchange's log ack
/// says `capped` from then on, and the log holds the cap and the master's line about it.
@Suite struct LogCapAckTests {
    @Test func theLogAckSaysCappedOnceTheRunsLogIsFull() async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("a", cpus: 1)
            _ = try await client.submit(echoJob(tasks: 1))
            func exchange(_ request: ExchangeRequest) async throws -> ExchangeResponse {
                let reply = try await client.send(.post, "/v1/agents/\(agent)/exchange", token: credential, json: request)
                #expect(reply.status == 200, "\(String(decoding: reply.body.prefix(300), as: UTF8.self))")
                return try reply.decode(ExchangeResponse.self)
            }
            let lease = try #require(try await exchange(ExchangeRequest(claim: ClaimRequest(slots: 1, wait: 0))).leases.first)
            let piece = Data(repeating: UInt8(ascii: "x"), count: ExchangeRequest.logBytes)
            var offset: Int64 = 0
            var acks: [ExchangeLogAck] = []
            while acks.last?.capped != true && offset < 2 * Limits.logBytesPerTask {
                let response = try await exchange(ExchangeRequest(logs: [
                    ExchangeLog(task: lease.task, epoch: lease.epoch, offset: offset, data: piece)]))
                let ack = try #require(response.logs.first)
                acks.append(ack)
                offset = ack.size
            }
            #expect(acks.count == Int(Limits.logBytesPerTask) / piece.count, "capped once the cap is reached, not before")
            #expect(acks.last?.capped == true)
            // More past the cap is dropped, and told so too; the log says where it stopped.
            let again = try await exchange(ExchangeRequest(logs: [
                ExchangeLog(task: lease.task, epoch: lease.epoch, offset: offset, data: piece)]))
            #expect(again.logs.first?.capped == true)
            let head = try await client.send(.get, "/v1/tasks/\(lease.task)/logs?from=\(Limits.logBytesPerTask - 10)")
            #expect(String(decoding: head.body, as: UTF8.self).contains("log reached its"))
        }
    }
}
