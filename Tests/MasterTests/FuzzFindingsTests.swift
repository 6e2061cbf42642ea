import Foundation
import PaddockMaster
import PaddockProtocol
import Testing

/// What the API's fuzzing (Tests/fuzz/run.sh, Schemathesis) found wrong in the master, each kept fixed here.
@Suite struct FuzzFindingsTests {
    /// `GET /v1/jobs?label=KEY=` (a label whose value is empty, which a job may carry) was a 400 "label is KEY=VALUE".
    @Test func aLabelFilterMayAskForAnEmptyValue() async throws {
        try await TestMaster().test { client in
            for (name, value) in [("empty", ""), ("full", "v")] {
                let reply = try await client.sendText(.post, "/v1/jobs",
                    #"{"name": "\#(name)", "labels": {"k": "\#(value)"}, "tasks": [{"name": "a", "command": ["true"]}]}"#)
                #expect(reply.status == 201, "\(String(decoding: reply.body, as: UTF8.self))")
            }
            let empty = try await client.send(.get, "/v1/jobs?label=k=")
            #expect(empty.status == 200, "\(String(decoding: empty.body, as: UTF8.self))")
            #expect(try empty.decode(Page<JobView>.self).items.map(\.name) == ["empty"])
            let full = try await client.send(.get, "/v1/jobs?label=k=v")
            #expect(try full.decode(Page<JobView>.self).items.map(\.name) == ["full"])
            // A key is still needed.
            for bad in ["=v", "=", "k"] {
                let reply = try await client.send(.get, "/v1/jobs?label=\(bad)")
                #expect(reply.status == 400, "label=\(bad)")
                #expect(reply.error?.field == "label")
            }
        }
    }

    /// A report about a task the agent does not hold said "task t5 is leased under epoch 0, not 0" (a queued task,
    /// leased to no one): the 409 now says why the report does not count.
    @Test func aStaleReportSaysWhyItDoesNotCount() async throws {
        try await TestMaster().test { client in
            let (first, firstCredential) = try await client.enroll("first")
            let (_, secondCredential) = try await client.enroll("second")
            let job = try await client.submit(echoJob(tasks: 2))
            let leases = try await client.claim(first, firstCredential, slots: 1)
            let lease = try #require(leases.first)
            let queued = try #require(job.taskIDs?.first { $0 != lease.task })

            // A task leased to no agent.
            var reply = try await client.send(.post, "/v1/tasks/\(queued)/start", token: firstCredential,
                                              json: TaskReport(epoch: LeaseEpoch(0)))
            #expect(reply.status == 409)
            #expect(reply.error?.code == "stale_epoch")
            #expect(reply.error?.message == "task \(queued) is queued, leased to no agent: this report (epoch 0) no longer counts")

            // A task leased to another agent (not named to this one).
            reply = try await client.send(.post, "/v1/tasks/\(lease.task)/start", token: secondCredential,
                                          json: TaskReport(epoch: lease.epoch))
            #expect(reply.status == 409)
            #expect(reply.error?.code == "stale_epoch")
            #expect(reply.error?.message == "task \(lease.task) is leased to another agent: this report (epoch \(lease.epoch)) no longer counts")

            // Its own task under another epoch: as before.
            let other = LeaseEpoch(lease.epoch.rawValue + 7)
            reply = try await client.send(.post, "/v1/tasks/\(lease.task)/start", token: firstCredential,
                                          json: TaskReport(epoch: other))
            #expect(reply.error?.message == "task \(lease.task) is leased under epoch \(lease.epoch), not \(other): this report no longer counts")

            // A log before the start.
            reply = try await client.send(.post, "/v1/tasks/\(lease.task)/logs?epoch=\(lease.epoch)&offset=0",
                                          token: firstCredential, body: Data("x".utf8))
            #expect(reply.status == 409)
            #expect(reply.error?.code == "stale_epoch")
            #expect(reply.error?.message == "task \(lease.task) has not started under epoch \(lease.epoch): its log follows its start")
            // Another agent's log.
            reply = try await client.send(.post, "/v1/tasks/\(lease.task)/logs?epoch=\(lease.epoch)&offset=0",
                                          token: secondCredential, body: Data("x".utf8))
            #expect(reply.error?.message == "task \(lease.task) is leased to another agent: this report (epoch \(lease.epoch)) no longer counts")
        }
    }

    /// A method a path of the API is not served with was a 404 "no route" (the path exists): now 405 with `Allow`.
    @Test func aMethodThePathIsNotServedWithIs405WithAllow() async throws {
        try await TestMaster().test { client in
            var reply = try await client.send(.put, "/v1/tasks/t1/finish")
            #expect(reply.status == 405)
            #expect(reply.error?.code == "method_not_allowed")
            #expect(reply.headers[.allow] == "POST")
            #expect(reply.headers[.contentType] == "application/json")
            reply = try await client.send(.delete, "/v1/jobs")
            #expect(reply.status == 405)
            #expect(reply.headers[.allow] == "GET, POST")
            reply = try await client.send(.put, "/v1/agents/a1")
            #expect(reply.headers[.allow] == "DELETE, GET, PATCH")
            // A route written out wins over the template it also fits (`/v1/agents/{id}`).
            reply = try await client.send(.put, "/v1/agents/reset")
            #expect(reply.status == 405)
            #expect(reply.headers[.allow] == "POST")
            // A path that is no route's is still a 404.
            reply = try await client.send(.get, "/v1/nothing")
            #expect(reply.status == 404)
            #expect(reply.error?.code == "not_found")
        }
    }

    /// An exception report whose `at` is no time the master reads was a 400 `malformed_json` "body is not valid
    /// JSON" with no field: now `invalid_request` naming `at`.
    @Test func anExceptionsTimeThatCannotBeReadIsNamed() async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("host")
            for at in ["yesterday", "2000-13-01T00:00:00Z", "2000-01-01"] {
                let reply = try await client.sendText(.post, "/v1/agents/\(agent)/exceptions", token: credential,
                                                      #"{"type": "t", "message": "m", "at": "\#(at)"}"#)
                #expect(reply.status == 400, "\(at)")
                #expect(reply.error?.code == "invalid_request", "\(at)")
                #expect(reply.error?.field == "at", "\(at)")
                #expect(reply.error?.message == "at: at is an ISO 8601 time such as 2025-01-31T12:00:00Z", "\(at)")
            }
            for at in ["2000-01-01T00:22:23Z", "2000-01-01T00:22:23.5Z", "2000-01-01T02:22:23+02:00"] {
                let reply = try await client.sendText(.post, "/v1/agents/\(agent)/exceptions", token: credential,
                                                      #"{"type": "t", "message": "m", "at": "\#(at)"}"#)
                #expect(reply.status == 201, "\(at): \(String(decoding: reply.body, as: UTF8.self))")
                #expect(reply.json?["at"] as? String == "2000-01-01T00:22:23Z", "\(at)")
            }
        }
    }

    /// `follow=` and `kill=` that are neither true nor false were read as false: now a 400 naming them.
    @Test func aBooleanQueryParameterIsTrueOrFalse() async throws {
        try await TestMaster().test { client in
            let job = try await client.submit(echoJob())
            let task = try #require(job.taskIDs?.first)
            for bad in ["yes", "1", "null", "TRUE", ""] {
                var reply = try await client.send(.get, "/v1/tasks/\(task)/logs?follow=\(bad)")
                #expect(reply.status == 400, "follow=\(bad)")
                #expect(reply.error?.field == "follow")
                reply = try await client.send(.post, "/v1/jobs/\(job.id)/pause?kill=\(bad)")
                #expect(reply.status == 400, "kill=\(bad)")
                #expect(reply.error?.field == "kill")
            }
            #expect(try await client.job(job.id).state != .paused, "nothing changed")
            #expect(try await client.send(.get, "/v1/tasks/\(task)/logs?follow=false").status == 200)
            #expect(try await client.send(.post, "/v1/jobs/\(job.id)/pause?kill=false").status == 200)
            #expect(try await client.send(.post, "/v1/jobs/\(job.id)/pause?kill=true").status == 200)
        }
    }
}
