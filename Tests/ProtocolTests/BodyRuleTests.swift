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

    /// Host samples, task usage and path mapping rules: read plainly, then checked, each rule at its field.
    @Test func samplesUsageAndPathMappingRules() throws {
        let sample = #"{"at": "2026-11-26T10:00:00Z", "cpu": {"busy_percent": BUSY, "per_core": [10, 20], "cores": 2},"#
            + #""load": {"one": LOAD, "five": 0, "fifteen": 0},"#
            + #""memory": {"total": 8, "used": 4, "available": 4, "swap_total": 0, "swap_used": SWAP},"#
            + #""disk": {"path": "/var", "total": 10, "free": 5},"#
            + #""gpus": [{"index": GPU, "name": "A100", "utilization_percent": null, "memory_total": 40, "memory_used": null}]}"#
        func with(_ values: [String: String]) -> String {
            ["BUSY": "50", "LOAD": "0.5", "SWAP": "0", "GPU": "0"].merging(values) { _, given in given }
                .reduce(sample) { $0.replacingOccurrences(of: $1.key, with: $1.value) }
        }
        let fine = try Wire.decode(HostMetrics.self, with([:]))
        #expect(fine.gpus.first?.utilizationPercent == nil && fine.gpus.first?.memoryTotal == 40)
        #expect(Self.field(HostMetrics.self, with(["BUSY": "150"])) == "cpu.busy_percent")
        #expect(Wire.rejection(HostMetrics.self, with(["BUSY": "150"]))?.message.contains("busy_percent is a percentage between 0 and 100") == true)
        #expect(Self.field(HostMetrics.self, with(["LOAD": "-1"])) == "load.one")
        #expect(Self.field(HostMetrics.self, with(["SWAP": "-4"])) == "memory.swap_used")
        #expect(Self.field(HostMetrics.self, with(["GPU": "-1"])) == "gpus[0].index")

        #expect(Self.field(TaskUsage.self, #"{"cpu_seconds": -0.5, "rss": 0, "peak_rss": 0, "processes": 1}"#) == "cpu_seconds")
        #expect(Self.field(TaskUsage.self, #"{"cpu_seconds": 1, "rss": 0, "peak_rss": -1, "processes": 1}"#) == "peak_rss")
        #expect(Self.field(TaskUsage.self, #"{"cpu_seconds": 1, "rss": 0, "peak_rss": 0, "processes": -1}"#) == "processes")

        let rule = #"{"source_path_format": "POSIX", "source_path": "SRC", "destination_path": "/mnt"}"#
        let rules = { (count: Int, source: String) in
            #"{"version": "pathmapping-1.0", "path_mapping_rules": ["# + Array(repeating: rule.replacingOccurrences(of: "SRC", with: source), count: count).joined(separator: ",") + "]}"
        }
        #expect(try Wire.decode(PathMappingRules.self, rules(2, "/proj")).rules.count == 2)
        #expect(Self.field(PathMappingRules.self, rules(1, "")) == "path_mapping_rules[0].source_path")
        #expect(Self.field(PathMappingRules.self, rules(PathMappingRules.maxRules + 1, "/proj")) == "path_mapping_rules")
    }
}
