import Foundation
import PaddockClient
import PaddockProtocol
import PaddockTestSupport
import Testing

/// The idle timeout for half-read requests (issue 16, slowloris), against a real master.
extension EndToEnd { @Suite struct IdleTimeoutTests {
    @Test func aHalfSentRequestIsClosedWhileALongPollOutlivesTheTimeout() async throws {
        let farm = try Farm()
        try await farm.startMaster(["--idle-timeout", "1s"])
        let port = farm.port
        // Headers begun, never ended: the master closes the connection once it has been idle 1 s.
        let started = ContinuousClock.now
        let (bytes, closed) = try await offThePool {
            let connection = try RawConnection(port: port)
            try connection.write("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            return connection.readUntilClosed(timeout: 60)
        }
        #expect(closed, "the half-read request's connection is still open after 60 s")
        #expect(bytes.isEmpty, "\(String(decoding: bytes, as: UTF8.self))")
        #expect(ContinuousClock.now - started < .seconds(45))

        // A request read whole and held by the master (a talkback long-poll of 3 s) is answered.
        let url = try #require(URL(string: farm.url))
        let enrolled: EnrollResponse = try await MasterClient(baseURL: url, token: Farm.join).call(
            "POST", APIPath.agents, json: EnrollRequest(name: "poller", resources: ResourceVector(cpus: 1), tags: [], version: "test"))
        let answer = try await offThePool {
            let connection = try RawConnection(port: port)
            try connection.write("GET /v1/agents/\(enrolled.id)/commands?after=0&wait=3 HTTP/1.1\r\nHost: x\r\n"
                                 + "Authorization: Bearer \(enrolled.credential)\r\n\r\n")
            return try connection.readResponse(timeout: 60)
        }
        #expect(answer.status == 200, "\(answer.body)")
        let batch = try WireJSON.decoder().decode(CommandBatch.self, from: Data(answer.body.utf8))
        #expect(batch.commands.isEmpty)
    }
} }
