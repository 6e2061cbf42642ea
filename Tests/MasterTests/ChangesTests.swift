import Foundation
import Hummingbird
import HummingbirdTesting
import PaddockProtocol
import Testing

/// `GET /v1/changes` (issue 17): the dashboard's one long-poll answers when the farm moved, holds
/// otherwise, and refuses what it cannot read.
@Suite struct ChangesTests {
    func version(_ client: TestMaster.Client, _ query: String = "") async throws -> String {
        let reply = try await client.send(.get, "/v1/changes" + query)
        #expect(reply.status == 200, "\(String(decoding: reply.body, as: UTF8.self))")
        return try reply.decode(ChangesView.self).version
    }

    @Test func aHeldPollAnswersWhenAJobIsSubmittedAndNotBefore() async throws {
        try await TestMaster().test { client in
            let first = try await version(client)
            #expect(try await version(client, "?after=\(first)&wait=0") == first, "nothing moved")
            let started = ContinuousClock.now
            // Held for nothing: it answers after its wait with the same version.
            #expect(try await version(client, "?after=\(first)&wait=0.3") == first)
            #expect(ContinuousClock.now - started >= .milliseconds(250))

            async let moved = version(client, "?after=\(first)&wait=30")
            try await Task.sleep(for: .milliseconds(100))  // the poll is held by now (it cannot miss the change either way)
            let submit = try await client.send(.post, "/v1/jobs", json: JobSubmission(name: "j", tasks: [
                TaskSpec(name: "t", command: ["true"])]))
            #expect(submit.status == 201)
            let after = try await moved
            #expect(after != first)
            #expect(ContinuousClock.now - started < .seconds(25), "answered by the submission, not by its wait")
            // A version given after the change answers at once; one of another master waits like the current one.
            #expect(try await version(client, "?after=\(first)&wait=30") == after)
            let elsewhere = ContinuousClock.now
            #expect(try await version(client, "?after=othermaster.\(0)&wait=0.2") == after)
            #expect(ContinuousClock.now - elsewhere >= .milliseconds(150))
        }
    }

    @Test func badQueriesAreRefusedAndATokenIsNeeded() async throws {
        try await TestMaster().test { client in
            for query in ["?wait=61", "?wait=-1", "?wait=soon", "?after=nodot", "?after=a.b", "?after=.1"] {
                let reply = try await client.send(.get, "/v1/changes" + query)
                #expect(reply.status == 400, "\(query): \(reply.status)")
            }
            #expect(try await client.send(.get, "/v1/changes", token: nil).status == 401)
        }
    }
}
