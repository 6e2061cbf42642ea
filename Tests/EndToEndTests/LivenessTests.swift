import Foundation
import PaddockClient
import PaddockProtocol
import PaddockTestSupport
import Testing

/// An agent that holds a long-poll open is alive, heartbeat or not (`LivenessKeeper`): an idle agent
/// heartbeats only to report its host. Once its connection closes, it goes offline as a silent one.
extension EndToEnd { @Suite struct LivenessTests {
    @Test func aHeldLongPollKeepsItsAgentOnlineUntilItsConnectionCloses() async throws {
        // 6 s: the keeper moves `last_seen` every 2 s, so a master stalled up to 4 s on a busy machine
        // still keeps the agent online.
        let farm = try Farm(leaseTimeout: "6s")
        try await farm.startMaster()
        let url = try #require(URL(string: farm.url))
        let enrolled: EnrollResponse = try await MasterClient(baseURL: url, token: Farm.join).call(
            "POST", APIPath.agents, json: EnrollRequest(name: "quiet", resources: ResourceVector(cpus: 1), tags: [], version: "test"))
        let agent = MasterClient(baseURL: url, token: enrolled.credential)
        let enrolledAt = try #require(try await farm.agent(named: "quiet")).lastSeen
        let poll = Task { () -> CommandBatch in
            try await agent.longPoll("GET", APIPath.commands(enrolled.id), query: ["after": "0", "wait": "60"], timeout: 90)
        }
        // No heartbeat: the held poll alone keeps it seen, past twice the lease timeout.
        var view = try #require(try await farm.agent(named: "quiet"))
        try await eventually("the agent seen again 13 s after it enrolled", timeout: 50) {
            view = try #require(try await farm.agent(named: "quiet"))
            return view.lastSeen.timeIntervalSince(enrolledAt) > 13 || view.state != .online
        }
        #expect(view.state == .online)

        // The poll's connection closes (the client gone): the agent goes offline well before the poll's
        // minute would have ended at the master.
        poll.cancel()
        _ = try? await poll.value
        try await eventually("the agent offline", timeout: 40) { try await farm.agent(named: "quiet")?.state == .offline }
    }
} }
