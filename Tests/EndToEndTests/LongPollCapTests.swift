import Foundation
import PaddockClient
import PaddockProtocol
import PaddockTestSupport
import Testing

/// One held talkback long-poll per agent (issue 16), against a real master: an agent's newer poll
/// ends its older ones, which answer at once with what they have.
extension EndToEnd { @Suite struct LongPollCapTests {
    actor Answers {
        var batches: [CommandBatch] = []
        func add(_ batch: CommandBatch) { batches.append(batch) }
    }

    @Test func aNewerTalkbackPollOfTheSameAgentEndsTheOlderOnes() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        let url = try #require(URL(string: farm.url))
        let enrolled: EnrollResponse = try await MasterClient(baseURL: url, token: Farm.join).call(
            "POST", APIPath.agents, json: EnrollRequest(name: "poller", resources: ResourceVector(cpus: 1), tags: [], version: "test"))
        let agent = MasterClient(baseURL: url, token: enrolled.credential)
        let answers = Answers()
        let polls = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<3 {
                    group.addTask {
                        let batch: CommandBatch = try await agent.longPoll(
                            "GET", APIPath.commands(enrolled.id), query: ["after": "0", "wait": "60"], timeout: 90)
                        await answers.add(batch)
                    }
                }
                try await group.waitForAll()
            }
        }
        // Two of the three end at once, empty, though they asked to wait a minute.
        try await eventually("two polls ended by the newest", timeout: 30) { await answers.batches.count == 2 }
        #expect(await answers.batches.allSatisfy { $0.commands.isEmpty })
        // The newest is still held, and hears the next command.
        let _: CommandAccepted = try await farm.admin.call("POST", APIPath.commands(enrolled.id), json: CommandRequest(kind: .ping))
        try await eventually("the held poll answered the command", timeout: 30) { await answers.batches.count == 3 }
        #expect(await answers.batches.last?.commands.map(\.kind) == [.ping])
        try await polls.value

        // An admin reading the agent's commands does not end the agent's poll.
        let held = Task { () -> CommandBatch in
            try await agent.longPoll("GET", APIPath.commands(enrolled.id), query: ["after": "1", "wait": "60"], timeout: 90)
        }
        let page: CommandBatch = try await farm.admin.call("GET", APIPath.commands(enrolled.id), query: ["after": "0"])
        #expect(page.commands.count == 1)
        let _: CommandAccepted = try await farm.admin.call("POST", APIPath.commands(enrolled.id), json: CommandRequest(kind: .drain))
        #expect(try await held.value.commands.map(\.kind) == [.drain])
    }
} }
