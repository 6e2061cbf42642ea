import Foundation
import PaddockMaster
import PaddockProtocol
import Testing

/// Every bad request gets a 4xx with a JSON `{error, message}` and writes nothing.
@Suite struct BadInputTests {
    static let badJobs: [(String, String)] = [
        ("malformed JSON", #"{"name": "x", "tasks": [ "#),
        ("not an object", #"[1, 2, 3]"#),
        ("empty argv", #"{"name": "x", "tasks": [{"name": "a", "command": []}]}"#),
        ("empty program", #"{"name": "x", "tasks": [{"name": "a", "command": [""]}]}"#),
        ("negative cpus", #"{"name": "x", "tasks": [{"name": "a", "command": ["true"], "requirements": {"cpus": -1}}]}"#),
        ("NaN cpus", #"{"name": "x", "tasks": [{"name": "a", "command": ["true"], "requirements": {"cpus": NaN}}]}"#),
        ("NaN cpus as text", #"{"name": "x", "tasks": [{"name": "a", "command": ["true"], "requirements": {"cpus": "NaN"}}]}"#),
        ("absurd cpus", #"{"name": "x", "tasks": [{"name": "a", "command": ["true"], "requirements": {"cpus": 1e300}}]}"#),
        ("unknown requirement", #"{"name": "x", "tasks": [{"name": "a", "command": ["true"], "requirements": {"cpu": 4}}]}"#),
        ("bad size", #"{"name": "x", "tasks": [{"name": "a", "command": ["true"], "requirements": {"ram": "8 parsecs"}}]}"#),
        ("unknown task field", #"{"name": "x", "tasks": [{"name": "a", "command": ["true"], "shell": "rm -rf /"}]}"#),
        ("no tasks", #"{"name": "x", "tasks": []}"#),
        ("missing name", #"{"tasks": [{"name": "a", "command": ["true"]}]}"#),
        ("relative cwd", #"{"name": "x", "tasks": [{"name": "a", "command": ["true"], "cwd": "../etc"}]}"#),
        ("bad frames", #"{"name": "x", "frames": "10-1", "command": ["true"]}"#),
        ("zero chunk", #"{"name": "x", "frames": "1-10", "chunk": 0, "command": ["true"]}"#),
        ("bad env name", #"{"name": "x", "tasks": [{"name": "a", "command": ["true"], "env": {"A=B": "c"}}]}"#),
        ("negative timeout", #"{"name": "x", "tasks": [{"name": "a", "command": ["true"], "timeout": -5}]}"#),
        // PostgreSQL's text cannot hold NUL: refused for every store alike.
        ("NUL in a name", #"{"name": "a\u0000b", "tasks": [{"name": "a", "command": ["true"]}]}"#),
        ("NUL in a label", #"{"name": "x", "labels": {"k": "\u0000"}, "tasks": [{"name": "a", "command": ["true"]}]}"#),
    ]

    @Test(arguments: badJobs)
    func badJobIsRefusedWithJSONAndWritesNothing(_ name: String, _ body: String) async throws {
        try await TestMaster().test { client in
            let reply = try await client.sendText(.post, "/v1/jobs", body)
            #expect(reply.status == 400, "\(name)")
            let error = try #require(reply.error, "\(name): \(String(decoding: reply.body, as: UTF8.self))")
            #expect(!error.message.isEmpty)
            #expect(try await client.jobCount() == 0)
            #expect(try await client.send(.get, "/v1/tasks").decode(Page<TaskView>.self).items.isEmpty)
        }
    }

    @Test func unknownFieldIsNamed() async throws {
        try await TestMaster().test { client in
            let reply = try await client.sendText(.post, "/v1/jobs",
                #"{"name": "x", "tasks": [{"name": "a", "command": ["true"], "requirements": {"cpu": 4}}]}"#)
            #expect(reply.error?.field == "tasks[0].requirements.cpu")
        }
    }

    @Test func twentyMegabyteBodyIsRefused() async throws {
        try await TestMaster().test { client in
            let huge = #"{"name": "x", "tasks": [{"name": "a", "command": ["echo", ""#
                + String(repeating: "a", count: 20 << 20) + #""]}]}"#
            let reply = try await client.sendText(.post, "/v1/jobs", huge)
            #expect(reply.status == 413)
            #expect(reply.error?.code == "too_large")
            #expect(try await client.jobCount() == 0)
        }
    }

    @Test func aFrameTemplateThatWouldExpandPastItsBoundIsRefusedBeforeExpanding() async throws {
        try await TestMaster().test { client in
            // 4000 arguments of 18 `{start}` each (~0.5 MiB) over 100 000 frames: ~50 GB if it were expanded.
            let argument = "\"" + String(repeating: "{start}", count: 18) + "\""
            let body = #"{"name": "x", "frames": "1-100000", "command": ["echo", "#
                + Array(repeating: argument, count: 4000).joined(separator: ", ") + "]}"
            let reply = try await client.sendText(.post, "/v1/jobs", body)
            #expect(reply.status == 413)
            #expect(reply.error?.code == "too_large")
            #expect(reply.error?.message.contains("100000 tasks") == true, "\(reply.error?.message ?? "")")
            #expect(try await client.jobCount() == 0)
            // A template within the bound expands as before.
            let small = try await client.sendText(.post, "/v1/jobs", #"{"name": "y", "frames": "1-1000", "command": ["echo", "{start}"]}"#)
            #expect(small.status == 201)
        }
    }

    @Test func tokensAreRequired() async throws {
        try await TestMaster().test { client in
            let job = try WireJSON.encoder().encode(echoJob())
            for token in [nil, "wrong", TestMaster.join] as [String?] {
                let reply = try await client.send(.post, "/v1/jobs", token: token, body: job)
                #expect(reply.status == (token == TestMaster.join ? 403 : 401))
                #expect(reply.error != nil)
            }
            #expect(try await client.send(.get, "/v1/jobs", token: nil).status == 401)
            #expect(try await client.jobCount() == 0)
            // Enrolling needs the join token, not a guess.
            let enroll = try await client.send(.post, "/v1/agents", token: "guess", json: EnrollRequest(
                name: "x", resources: ResourceVector(cpus: 1), tags: [], version: "t"))
            #expect(enroll.status == 401)
            // Open endpoints.
            #expect(try await client.send(.get, "/healthz", token: nil).status == 200)
            #expect(try await client.send(.get, "/openapi.yaml", token: nil).status == 200)
        }
    }

    @Test func nulIsRefusedOnlyWhereItIsOne() {
        #expect(NULGuard.jsonHasNUL(Array(#"{"a": "x\u0000"}"#.utf8)))
        // An escaped backslash followed by the text u0000 is no NUL.
        #expect(!NULGuard.jsonHasNUL(Array(#"{"a": "x\\u0000"}"#.utf8)))
        #expect(!NULGuard.jsonHasNUL(Array(#"{"a": "\u0041\n"}"#.utf8)))
    }

    @Test func nulInAQueryParameterIsRefused() async throws {
        try await TestMaster().test { client in
            let reply = try await client.send(.get, "/v1/jobs?owner=a%00b")
            #expect(reply.status == 400 && reply.error?.field == "owner")
        }
    }

    @Test func unknownIdsAnswer404() async throws {
        try await TestMaster().test { client in
            for path in ["/v1/tasks/t999", "/v1/tasks/nonsense", "/v1/jobs/j42", "/v1/agents/a7", "/v1/tasks/t999/logs",
                         "/v1/nowhere"] {
                let reply = try await client.send(.get, path)
                #expect(reply.status == 404, "\(path)")
                #expect(reply.error?.code == "not_found", "\(path)")
            }
            let (agent, credential) = try await client.enroll("a")
            let reply = try await client.send(.post, "/v1/tasks/t999/finish", token: credential,
                                              json: FinishReport(epoch: LeaseEpoch(1), outcome: .succeeded, exitCode: 0))
            #expect(reply.status == 404)
            _ = agent
        }
    }

    @Test func badClaimsAndReportsAre400() async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("a")
            for body in [#"{"slots": 0}"#, #"{"slots": 1, "wait": -1}"#, #"{"slots": 1, "wait": 3600}"#, #"{"slot": 1}"#] {
                let reply = try await client.sendText(.post, "/v1/agents/\(agent)/claim", token: credential, body)
                #expect(reply.status == 400, "\(body)")
            }
            let enroll = try await client.sendText(.post, "/v1/agents", token: TestMaster.join,
                #"{"name": "../../etc", "resources": {"cpus": 1}, "tags": []}"#)
            #expect(enroll.status == 400)
        }
    }
}
