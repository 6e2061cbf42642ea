import Foundation
import PaddockProtocol
import Testing

/// The bodies besides a job's that decode plainly and are validated after (`ValidatedAfterDecoding`):
/// each broken rule is said at its field.
@Suite struct BodyRuleTests {
    static func field<T: Decodable>(_ type: T.Type, _ json: String,
                                    sourceLocation: SourceLocation = #_sourceLocation) -> String? {
        let refusal = Wire.rejection(type, json, sourceLocation: sourceLocation)
        #expect(refusal?.status == 400, "\(String(describing: refusal))", sourceLocation: sourceLocation)
        return refusal?.field
    }

    @Test func patchesOfJobsTasksAndAgents() throws {
        #expect(Self.field(JobPatch.self, "{}") == "priority")
        #expect(Self.field(JobPatch.self, #"{"priority": 1000001}"#) == "priority")
        #expect(Self.field(JobPatch.self, #"{"labels": {"a b": "x"}}"#) == "labels")
        #expect(try Wire.decode(JobPatch.self, #"{"clear_blocklist": true}"#).clearBlocklist == true)

        #expect(Self.field(TaskBulkPatch.self, #"{"ids": [], "priority": 1}"#) == "ids")
        #expect(Self.field(TaskBulkPatch.self, #"{"ids": ["t1"]}"#) == "priority")
        #expect(Self.field(TaskBulkPatch.self, #"{"ids": ["t1"], "priority": -1000001}"#) == "priority")

        #expect(Self.field(AgentPatch.self, "{}") == "drain")
        #expect(Self.field(AgentPatch.self, #"{"tags": ["a b"]}"#) == "tags")
        #expect(try Wire.decode(AgentPatch.self, #"{"tags": ["b", "a", "b"]}"#).tags == ["a", "b"])
        #expect(Self.field(AgentPatch.self, #"{"resources": {"cpus": -1}}"#) == "resources.cpus")
    }

    @Test func tokensEnrollmentsAndCommands() throws {
        #expect(Self.field(TokenRequest.self, #"{"name": "a b", "role": "read"}"#) == "name")
        #expect(Self.field(TokenRequest.self, #"{"name": "ci", "role": "read", "ttl": 0}"#) == "ttl")
        #expect(Self.field(TokenRequest.self, #"{"name": "ci", "role": "submit", "uses": 3}"#) == "uses")
        #expect(Self.field(TokenRequest.self, #"{"name": "ci", "role": "join", "uses": 0}"#) == "uses")
        #expect(try Wire.decode(TokenRequest.self, #"{"name": "ci", "role": "join", "uses": 3}"#).uses == 3)

        let enroll = #"{"name": "NAME", "resources": {"cpus": 4}, "tags": ["b", "a", "b"]}"#
        #expect(try Wire.decode(EnrollRequest.self, enroll.replacingOccurrences(of: "NAME", with: "render-1")).tags == ["a", "b"])
        #expect(Self.field(EnrollRequest.self, enroll.replacingOccurrences(of: "NAME", with: "../etc")) == "name")
        #expect(Self.field(AgentResetRequest.self, #"{"name": "a/b"}"#) == "name")

        #expect(Self.field(CommandRequest.self, #"{"kind": "update", "tags": ["ok"], "ttl": 0}"#) == "ttl")
        #expect(Self.field(CommandRequest.self, #"{"kind": "update", "tags": ["not ok"]}"#) == "tags")
    }

    @Test func resourcesAreCheckedBeforeTheyBecomeThousandthsOfACPU() {
        #expect(Self.field(ResourceVector.self, #"{"cpus": 1e300}"#) == "cpus")
        #expect(Self.field(ResourceVector.self, #"{"ram": -1}"#) == "ram")
        #expect(Self.field(ResourceVector.self, #"{"gpus": 2000}"#) == "gpus")
        let tags = (0...Limits.tagCount).map { #""t\#($0)""# }.joined(separator: ", ")
        #expect(Self.field(TaskRequirements.self, #"{"tags": [\#(tags)]}"#) == "tags")
    }
}
