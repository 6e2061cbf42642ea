import Foundation
import Hummingbird
import PaddockProtocol
import Testing

/// `POST /v1/jobs` with `Prefer: return=minimal` (RFC 7240): the job's id, its tasks' ids and its
/// warnings, said to be applied; without it (or with a preference the master does not know), the
/// whole job as before.
@Suite struct SubmitPreferenceTests {
    private static let prefer = HTTPFields.Element.Name("Prefer")!
    private static let applied = HTTPFields.Element.Name("Preference-Applied")!
    private static let replayed = HTTPFields.Element.Name("Idempotent-Replayed")!
    private static let submission = JobSubmission(name: "j", tasks: [TaskSpec(name: "a", command: ["true"]),
                                                                     TaskSpec(name: "b", command: ["true"])])

    @Test func aMinimalAnswerHoldsTheIdsAndWarningsOnly() async throws {
        try await TestMaster().test { client in
            let reply = try await client.send(.post, APIPath.jobs, json: Self.submission,
                                              headers: [Self.prefer: "return=minimal"])
            #expect(reply.status == 201)
            #expect(reply.headers[Self.applied] == "return=minimal")
            #expect(Set(try #require(reply.json).keys) == ["id", "task_ids", "warnings", "href"])
            let created = try reply.decode(JobCreated.self)
            #expect(created.taskIDs?.count == 2)
            #expect(created.href == APIPath.job(created.id))
            // No agent is enrolled: the warning a whole answer carries is there too.
            #expect(created.warnings.contains { $0.contains("fit no agent") }, "\(created.warnings)")
            // The job is the one stored.
            let stored = try await client.send(.get, APIPath.job(created.id)).decode(JobView.self)
            #expect(stored.taskIDs == created.taskIDs)
            #expect(stored.name == "j")
        }
    }

    @Test func preferencesAreReadAsRFC7240SaysAndUnknownOnesIgnored() async throws {
        try await TestMaster().test { client in
            for value in ["return=minimal", "RETURN=\"minimal\"", "respond-async, return=minimal; foo=bar",
                          "wait=5,return=minimal"] {
                let reply = try await client.send(.post, APIPath.jobs, json: Self.submission, headers: [Self.prefer: value])
                #expect(reply.status == 201, "\(value)")
                #expect(reply.headers[Self.applied] == "return=minimal", "\(value)")
                #expect(reply.json?["name"] == nil, "\(value): a whole job")
            }
            for value in ["return=representation", "minimal", "return=minimalist", "", "return"] {
                let reply = try await client.send(.post, APIPath.jobs, json: Self.submission, headers: [Self.prefer: value])
                #expect(reply.status == 201, "\(value)")
                #expect(reply.headers[Self.applied] == nil, "\(value)")
                #expect(try reply.decode(JobView.self).name == "j", "\(value)")
            }
        }
    }

    /// A replay answers the way this request prefers, whatever the first one did.
    @Test func aReplayedSubmissionIsAnsweredAsTheReplayPrefers() async throws {
        try await TestMaster().test { client in
            let key = HTTPFields.Element.Name("Idempotency-Key")!
            let id = UUID().uuidString
            let first = try await client.send(.post, APIPath.jobs, json: Self.submission, headers: [key: id])
            let again = try await client.send(.post, APIPath.jobs, json: Self.submission,
                                              headers: [key: id, Self.prefer: "return=minimal"])
            #expect(again.status == 201)
            #expect(again.headers[Self.replayed] == "true")
            #expect(again.headers[Self.applied] == "return=minimal")
            let job = try first.decode(JobView.self)
            let created = try again.decode(JobCreated.self)
            #expect(created.id == job.id)
            #expect(created.taskIDs == job.taskIDs)
        }
    }
}
