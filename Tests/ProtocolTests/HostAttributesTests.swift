import Foundation
import PaddockProtocol
import Testing

/// Host attributes as tags (issue 18, item 5): what an agent carries, what a task needs, and the
/// claim policy honouring `anyOf` and `allOf`.
@Suite struct HostAttributesTests {
    @Test func namesAndValuesAreCanonical() throws {
        #expect(try HostAttributes.tag("attr.worker.os.family", "Linux") == "os.family:linux")
        #expect(try HostAttributes.tag("cpu.arch", "x86_64") == "cpu.arch:x86_64")
        #expect(try HostAttributes.tag("attr.custom.Host_Config", "HostConfigA") == "custom.host_config:HostConfigA")
        #expect(try HostAttributes.declared("host_config=HostConfigA") == "custom.host_config:HostConfigA")
        #expect(try HostAttributes.declared("attr.custom.site = paris") == "custom.site:paris")
        #expect(try HostAttributes.declared("os.family=linux") == "os.family:linux")
        #expect(throws: HostAttributes.Problem.badValue(name: "os.family", value: "beos")) { try HostAttributes.tag("os.family", "beos") }
        #expect(throws: HostAttributes.Problem.badName("gpu.model")) { try HostAttributes.tag("gpu.model", "a100") }
        #expect(throws: HostAttributes.Problem.badName("host_config")) { try HostAttributes.declared("host_config") }
        for value in ["a:b", "1abc", "-x", "with space", ""] {
            #expect(throws: HostAttributes.Problem.self) { try HostAttributes.declared("x=\(value)") }
        }
    }

    @Test func requirementsBecomeTags() throws {
        #expect(try HostAttributes.requirement("attr.worker.os.family", anyOf: ["linux", "macos"], allOf: nil)
                == ["any:os.family:linux:macos"])
        #expect(try HostAttributes.requirement("attr.worker.os.family", anyOf: ["LINUX", "linux"], allOf: nil) == ["os.family:linux"])
        #expect(try HostAttributes.requirement("attr.custom.software", anyOf: nil, allOf: ["maya", "nuke"])
                == ["custom.software:maya", "custom.software:nuke"])
        #expect(try HostAttributes.requirement("attr.custom.software", anyOf: ["a", "b"], allOf: ["c"])
                == ["custom.software:c", "any:custom.software:a:b"])
        #expect(throws: HostAttributes.Problem.noValue(name: "custom.x")) {
            try HostAttributes.requirement("attr.custom.x", anyOf: [], allOf: nil)
        }
        let long = String(repeating: "v", count: 60)
        #expect(throws: HostAttributes.Problem.tooLong("any:custom.x:\(long):w")) {
            try HostAttributes.requirement("attr.custom.x", anyOf: [long, "w"], allOf: nil)
        }
    }

    @Test func anAgentSatisfiesAnyOfWithOneValue() {
        let agent: Set<String> = ["os.family:linux", "cpu.arch:x86_64", "custom.software:maya", "gpu"]
        #expect(HostAttributes.satisfies(agent, "gpu"))
        #expect(HostAttributes.satisfies(agent, "any:os.family:macos:linux"))
        #expect(!HostAttributes.satisfies(agent, "any:os.family:macos:windows"))
        #expect(!HostAttributes.satisfies(agent, "any:custom.software:linux"))  // another attribute's value
        #expect(!HostAttributes.satisfies(agent, "any:os.family"))
        #expect(!HostAttributes.satisfies(agent, "any:os.family::"))
        #expect(!HostAttributes.satisfies(agent, "cpu.arch:arm64"))
        // A tag named `any:...` by its agent is met as any other tag.
        #expect(HostAttributes.satisfies(["any:x"], "any:x"))
    }

    @Test func theClaimPolicyHonoursAttributes() {
        let linux: Set<String> = ["os.family:linux", "cpu.arch:x86_64", "custom.host_config:HostConfigC"]
        let tasks = [
            ClaimPolicy.Candidate(task: TaskID(rawValue: 1), job: JobID(rawValue: 1),
                                  requirements: TaskRequirements(resources: ResourceVector(cpus: 1),
                                                                 tags: ["any:custom.host_config:HostConfigA:HostConfigC", "any:os.family:linux:macos"])),
            ClaimPolicy.Candidate(task: TaskID(rawValue: 2), job: JobID(rawValue: 1),
                                  requirements: TaskRequirements(resources: ResourceVector(cpus: 1),
                                                                 tags: ["custom.host_config:HostConfigB", "os.family:linux"])),
            ClaimPolicy.Candidate(task: TaskID(rawValue: 3), job: JobID(rawValue: 1),
                                  requirements: TaskRequirements(resources: ResourceVector(cpus: 1), tags: ["cpu.arch:arm64"])),
        ]
        let chosen = ClaimPolicy().select(from: tasks, for: .init(free: ResourceVector(cpus: 8), tags: linux, slots: 8))
        #expect(chosen.map(\.task.rawValue) == [1])
        #expect(ClaimPolicy.canEverRun(tasks[1].requirements, capacity: ResourceVector(cpus: 8),
                                       tags: ["os.family:linux", "custom.host_config:HostConfigB"]))
    }

    @Test func requirementsTakeAttributes() throws {
        let spec = try Wire.decode(TaskRequirements.self,
            #"{"cpus": 1, "tags": ["gpu"], "attributes": {"os.family": "Linux", "custom.host_config": ["HostConfigA", "HostConfigB"]}}"#)
        #expect(spec.tags == ["any:custom.host_config:HostConfigA:HostConfigB", "gpu", "os.family:linux"])
        let refused = Wire.rejection(TaskRequirements.self, #"{"attributes": {"os.family": "beos"}}"#)
        #expect(refused?.field == "attributes.os.family", "\(String(describing: refused))")
        #expect(refused?.message.contains("one of linux, macos, windows") == true, "\(String(describing: refused))")
    }
}
