import Foundation
import PaddockProtocol
import Testing

/// Host amounts as tags (issue 18, item 5: `amount.worker.gpu.memory`, `amount.custom.*`): what an
/// agent has, the range a task needs, and the claim policy matching them.
@Suite struct HostAmountsTests {
    @Test func agentsCarryTheirAmounts() throws {
        #expect(try HostAmounts.declared("licenses=4") == "amount:custom.licenses:4")
        #expect(try HostAmounts.declared("amount.custom.Power_Budget = 2.5") == "amount:custom.power_budget:2.5")
        #expect(try HostAmounts.declared("gpu.memory=24576") == "amount:gpu.memory:24576")
        #expect(try HostAmounts.tag("amount.worker.gpu.memory", 8192.0) == "amount:gpu.memory:8192")
        #expect(throws: HostAmounts.Problem.badNumber(name: "custom.licenses", text: "four")) { try HostAmounts.declared("licenses=four") }
        #expect(throws: HostAmounts.Problem.badNumber(name: "custom.licenses", text: "-1")) { try HostAmounts.declared("licenses=-1") }
        #expect(throws: HostAmounts.Problem.badName("licenses")) { try HostAmounts.declared("licenses") }
        #expect(throws: HostAmounts.Problem.badName("amount.worker.vcpu")) { try HostAmounts.tag("amount.worker.vcpu", 4) }
        #expect(throws: HostAmounts.Problem.badName("custom.9lives")) { try HostAmounts.declared("9lives=1") }
    }

    @Test func tasksNeedARange() throws {
        #expect(try HostAmounts.requirement("amount.custom.licenses", min: 2, max: nil) == "range:custom.licenses:2:")
        #expect(try HostAmounts.requirement("amount.worker.gpu.memory", min: 8192, max: 49152) == "range:gpu.memory:8192:49152")
        #expect(try HostAmounts.requirement("amount.custom.x", min: nil, max: 0.5) == "range:custom.x::0.5")
        #expect(throws: HostAmounts.Problem.emptyRange(name: "custom.x")) { try HostAmounts.requirement("amount.custom.x", min: 3, max: 2) }
    }

    @Test func anAgentMeetsARangeWithAnAmountInIt() {
        let agent: Set<String> = ["amount:custom.licenses:4", "amount:gpu.memory:24576", "os.family:linux"]
        #expect(HostAttributes.satisfies(agent, "range:custom.licenses:2:"))
        #expect(HostAttributes.satisfies(agent, "range:custom.licenses:4:4"))
        #expect(HostAttributes.satisfies(agent, "range:custom.licenses::8"))
        #expect(!HostAttributes.satisfies(agent, "range:custom.licenses:5:"))
        #expect(!HostAttributes.satisfies(agent, "range:custom.licenses::3"))
        #expect(HostAttributes.satisfies(agent, "range:gpu.memory:16384:"))
        #expect(!HostAttributes.satisfies(agent, "range:gpu.memory:32768:"))
        #expect(!HostAttributes.satisfies(agent, "range:custom.seats:1:"), "an amount the agent does not have")
        #expect(!HostAttributes.satisfies(agent, "range:custom.licenses:x:"))
        #expect(!HostAttributes.satisfies(agent, "range:custom.licenses:1"))
        let candidates = [2.0, 5.0].enumerated().map { i, min in
            ClaimPolicy.Candidate(task: TaskID(rawValue: Int64(i + 1)), job: JobID(rawValue: 1),
                                  requirements: TaskRequirements(resources: ResourceVector(cpus: 1), tags: ["range:custom.licenses:\(Int(min)):"]))
        }
        let chosen = ClaimPolicy().select(from: candidates, for: .init(free: ResourceVector(cpus: 8), tags: agent, slots: 8))
        #expect(chosen.map(\.task.rawValue) == [1])
    }

    @Test func requirementsTakeAmounts() throws {
        let spec = try Wire.decode(TaskRequirements.self,
            #"{"cpus": 1, "amounts": {"licenses": 2, "gpu.memory": {"min": 8192, "max": 49152}}}"#)
        #expect(spec.tags == ["range:custom.licenses:2:", "range:gpu.memory:8192:49152"])
        let backwards = Wire.rejection(TaskRequirements.self, #"{"amounts": {"licenses": {"min": 3, "max": 2}}}"#)
        #expect(backwards?.field == "amounts.licenses", "\(String(describing: backwards))")
        #expect(backwards?.message.contains("min is above its max") == true, "\(String(describing: backwards))")
        let typo = Wire.rejection(TaskRequirements.self, #"{"amounts": {"licenses": {"mni": 3}}}"#)
        #expect(typo?.message.contains("did you mean 'min'") == true, "\(String(describing: typo)) \(typo?.message ?? "")")
        let empty = Wire.rejection(TaskRequirements.self, #"{"amounts": {"licenses": {}}}"#)
        #expect(empty != nil)
    }
}
