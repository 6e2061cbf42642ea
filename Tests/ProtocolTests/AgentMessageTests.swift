import Foundation
import PaddockProtocol
import Testing

@Suite("Agent messages")
struct AgentMessageTests {
    @Test func enroll() throws {
        let enroll = try Wire.decode(EnrollRequest.self, #"""
            {"name": "render-01", "resources": {"cpus": 4, "ram": "8GiB", "disk": 1024, "gpus": 1},
             "tags": ["gpu", "linux"], "version": "0.1.0"}
            """#)
        #expect(enroll.name == "render-01")
        #expect(enroll.resources == ResourceVector(cpus: 4, ram: 8 * GiB, disk: 1024, gpus: 1))
        #expect(enroll.tags == ["gpu", "linux"])
        let minimal = try Wire.decode(EnrollRequest.self, #"{"name": "a", "resources": {"cpus": 1}}"#)
        #expect(minimal.resources == ResourceVector(cpus: 1))
        #expect(minimal.tags.isEmpty)
        #expect(minimal.version == "unknown")
    }

    static let enrollRefusals: [(String, String)] = [
        (#"{"name": "has space", "resources": {}}"#, "name"),
        (#"{"name": "", "resources": {}}"#, "name"),
        (#"{"name": "../etc", "resources": {}}"#, "name"),
        (#"{"name": "a"}"#, "resources"),
        (#"{"name": "a", "resources": {"cpu": 4}}"#, "resources.cpu"),
        (#"{"name": "a", "resources": {"cpus": -4}}"#, "resources.cpus"),
        (#"{"name": "a", "resources": {"cpus": "NaN"}}"#, "resources.cpus"),
        (#"{"name": "a", "resources": {"ram": "8 apples"}}"#, "resources.ram"),
        (#"{"name": "a", "resources": {}, "tags": ["a b"]}"#, "tags"),
        (#"{"name": "a", "resources": {}, "token": "x"}"#, "token"),
    ]

    static let exchangeNumberRefusals: [(String, String)] = [
        (#"{"answered": {"incarnation": 0, "sequence": 1}}"#, "answered.incarnation"),
        (#"{"answered": {"incarnation": 9007199254740993, "sequence": 1}}"#, "answered.incarnation"),
        (#"{"answered": {"incarnation": 3, "sequence": -1}}"#, "answered.sequence"),
        (#"{"answered": {"incarnation": 3, "sequence": 1.5}}"#, "answered.sequence"),
        (#"{"answered": {"incarnation": 3}}"#, "answered.sequence"),
        (#"{"answered": {"incarnation": 3, "sequence": 1, "epoch": 2}}"#, "answered.epoch"),
    ]

    /// An exchange's number, as a heartbeat says it (and an exchange carries it), is bounded and whole.
    @Test(arguments: exchangeNumberRefusals)
    func exchangeNumberRefused(_ body: String, _ field: String) throws {
        let error = try #require(Wire.rejection(HeartbeatRequest.self, body))
        #expect(error.field == field, "\(error)")
        #expect(error.code == "invalid_request")
        let exchange = try #require(Wire.rejection(ExchangeRequest.self, body.replacingOccurrences(of: "answered", with: "number")))
        #expect(exchange.field == field.replacingOccurrences(of: "answered", with: "number"), "\(exchange)")
        let beat = try Wire.decode(HeartbeatRequest.self, #"{"answered": {"incarnation": 3, "sequence": 0}}"#)
        #expect(beat.answered == ExchangeNumber(incarnation: 3, sequence: 0))
    }

    @Test(arguments: enrollRefusals)
    func enrollRefused(_ body: String, _ field: String) throws {
        let error = try #require(Wire.rejection(EnrollRequest.self, body))
        #expect(error.field == field, "\(error)")
        #expect(error.code == "invalid_request")
    }

    @Test func claim() throws {
        let defaults = try Wire.decode(ClaimRequest.self, "{}")
        #expect(defaults.slots == 1)
        #expect(defaults.wait == 0)
        #expect(defaults.free == nil)
        let full = try Wire.decode(ClaimRequest.self, #"{"slots": 4, "wait": 20, "free": {"cpus": 2.5, "ram": "1GiB"}}"#)
        #expect(full.slots == 4)
        #expect(full.wait == 20)
        #expect(full.free == ResourceVector(milliCPUs: 2500, ram: GiB))
        #expect(defaults.prefetch == 0 && full.prefetch == 0)
    }

    /// `slots` may be 0 when the agent only prefetches; together they ask for at least one task.
    @Test func claimPrefetch() throws {
        let only = try Wire.decode(ClaimRequest.self, #"{"slots": 0, "prefetch": 3}"#)
        #expect(only.slots == 0 && only.prefetch == 3)
        let both = try Wire.decode(ClaimRequest.self, #"{"slots": 2, "prefetch": 1024, "wait": 5}"#)
        #expect(both.slots == 2 && both.prefetch == 1024)
        let nothing = try #require(Wire.rejection(ClaimRequest.self, #"{"slots": 0, "prefetch": 0}"#))
        #expect(nothing.status == 400 && nothing.field == "slots")
        #expect(nothing.message.contains("at least 1"), "\(nothing)")
        let again = try Wire.decode(ClaimRequest.self, try Wire.string(ClaimRequest(slots: 0, wait: 1, prefetch: 2)))
        #expect(again.slots == 0 && again.prefetch == 2 && again.wait == 1)
    }

    static let claimRefusals: [(String, String)] = [
        (#"{"slots": 0}"#, "slots"),
        (#"{"slots": 1025}"#, "slots"),
        (#"{"slots": 1.5}"#, "slots"),
        (#"{"wait": -1}"#, "wait"),
        (#"{"wait": 61}"#, "wait"),
        (#"{"wait": "5s"}"#, "wait"),
        (#"{"free": {"cpus": -1}}"#, "free.cpus"),
        (#"{"free": {"tags": ["x"]}}"#, "free.tags"),
        (#"{"slot": 2}"#, "slot"),
        (#"{"slots": 0, "prefetch": 0}"#, "slots"),
        (#"{"prefetch": -1}"#, "slots"),
        (#"{"prefetch": 1025}"#, "slots"),
        (#"{"prefetch": 1.5}"#, "prefetch"),
        (#"{"prefetch": "2"}"#, "prefetch"),
    ]

    @Test(arguments: claimRefusals)
    func claimRefused(_ body: String, _ field: String) throws {
        let error = try #require(Wire.rejection(ClaimRequest.self, body))
        #expect(error.field == field, "\(error)")
    }

    @Test func heartbeat() throws {
        #expect(try Wire.decode(HeartbeatRequest.self, "{}").held.isEmpty)
        let beat = try Wire.decode(HeartbeatRequest.self, #"{"held": [{"task": "t3", "epoch": 2}, {"task": "4", "epoch": 1}]}"#)
        #expect(beat.held == [HeldLease(task: TaskID(rawValue: 3), epoch: LeaseEpoch(2)),
                              HeldLease(task: TaskID(rawValue: 4), epoch: LeaseEpoch(1))])
        #expect(!beat.authoritative && !beat.leaving)
        let leaving = try Wire.decode(HeartbeatRequest.self, #"{"held": [], "authoritative": true, "leaving": true}"#)
        #expect(leaving.authoritative && leaving.leaving)
    }

    static let heartbeatRefusals: [(String, String)] = [
        (#"{"held": [{"task": "j3", "epoch": 2}]}"#, "held[0].task"),
        (#"{"held": [{"task": 3, "epoch": 2}]}"#, "held[0].task"),
        (#"{"held": [{"task": "t3"}]}"#, "held[0].epoch"),
        (#"{"held": [{"task": "t3", "epoch": 1.5}]}"#, "held[0].epoch"),
        (#"{"held": [{"task": "t3", "epoch": 1, "x": 0}]}"#, "held[0].x"),
        (#"{"leaving": "yes"}"#, "leaving"),
        (#"{"authoritative": 1}"#, "authoritative"),
    ]

    @Test(arguments: heartbeatRefusals)
    func heartbeatRefused(_ body: String, _ field: String) throws {
        let error = try #require(Wire.rejection(HeartbeatRequest.self, body))
        #expect(error.field == field, "\(error)")
    }

    @Test func tooManyHeldLeases() throws {
        let one = #"{"task": "t1", "epoch": 1}"#
        let list: String = Array(repeating: one, count: 4 * Limits.claimSlots + 1).joined(separator: ",")
        let error = try #require(Wire.rejection(HeartbeatRequest.self, #"{"held": ["# + list + "]}"))
        #expect(error.field == "held")
    }

    @Test func reports() throws {
        #expect(try Wire.decode(TaskReport.self, #"{"epoch": 3}"#).progress == nil)
        #expect(try Wire.decode(TaskReport.self, #"{"epoch": 3, "progress": 0.5}"#).progress == 0.5)
        let finish = try Wire.decode(FinishReport.self, #"{"epoch": 3, "outcome": "failed", "exit_code": 2, "reason": "boom"}"#)
        #expect(finish == FinishReport(epoch: LeaseEpoch(3), outcome: .failed, exitCode: 2, reason: "boom"))
        let long = try Wire.decode(FinishReport.self, #"{"epoch": 1, "outcome": "succeeded", "reason": "\#(String(repeating: "x", count: 5000))"}"#)
        #expect(long.reason?.count == 1024)
        #expect(try Wire.decode(FinishReport.self, #"{"epoch": 1, "outcome": "released"}"#).outcome == .released)
    }

    static let reportRefusals: [(String, String)] = [
        (#"{"progress": 0.5}"#, "epoch"),
        (#"{"epoch": "3"}"#, "epoch"),
        (#"{"epoch": 3, "progress": 1.5}"#, "progress"),
        (#"{"epoch": 3, "progress": -0.1}"#, "progress"),
        (#"{"epoch": 3, "progres": 0.5}"#, "progres"),
    ]

    @Test(arguments: reportRefusals)
    func reportRefused(_ body: String, _ field: String) throws {
        let error = try #require(Wire.rejection(TaskReport.self, body))
        #expect(error.field == field, "\(error)")
    }

    static let finishRefusals: [(String, String)] = [
        (#"{"epoch": 3}"#, "outcome"),
        (#"{"epoch": 3, "outcome": "exploded"}"#, "outcome"),
        (#"{"epoch": 3, "outcome": "failed", "exit_code": "1"}"#, "exit_code"),
        (#"{"epoch": 3, "outcome": "failed", "exit_code": 1.5}"#, "exit_code"),
        (#"{"epoch": 3, "outcome": "failed", "exitCode": 1}"#, "exitCode"),
    ]

    @Test(arguments: finishRefusals)
    func finishRefused(_ body: String, _ field: String) throws {
        let error = try #require(Wire.rejection(FinishReport.self, body))
        #expect(error.field == field, "\(error)")
    }

    @Test func leasesCarryWhatAnAgentNeeds() throws {
        let lease = TaskLease(task: TaskID(rawValue: 7), job: JobID(rawValue: 2), name: "frames 1-10", epoch: LeaseEpoch(3),
                              command: ["render", "1", "10"], env: ["A": "b"], cwd: nil, requirements: requirements(cpus: 2),
                              timeout: 60, attempt: 1)
        #expect(lease.held == HeldLease(task: TaskID(rawValue: 7), epoch: LeaseEpoch(3)))
        let decoded = try Wire.decode(ClaimResponse.self, try Wire.string(ClaimResponse(leases: [lease])))
        #expect(decoded.leases.count == 1)
        #expect(decoded.leases[0].command == lease.command)
        #expect(decoded.leases[0].requirements == lease.requirements)
        #expect(decoded.leases[0].timeout == 60)
        #expect(decoded.leases[0].prefetched == false)
        #expect(try Wire.object(lease)["prefetched"] as? Bool == false)
        var prefetched = lease
        prefetched.prefetched = true
        let back = try Wire.decode(ClaimResponse.self, try Wire.string(ClaimResponse(leases: [prefetched])))
        #expect(back.leases[0].prefetched)
    }
}

@Suite("ResourceVector")
struct ResourceVectorTests {
    @Test func arithmetic() {
        let a = ResourceVector(cpus: 1.5, ram: 2 * GiB, disk: 10, gpus: 1)
        let b = ResourceVector(cpus: 0.5, ram: GiB, disk: 5, gpus: 0)
        #expect(a + b == ResourceVector(cpus: 2, ram: 3 * GiB, disk: 15, gpus: 1))
        #expect(a - b == ResourceVector(cpus: 1, ram: GiB, disk: 5, gpus: 1))
        #expect(!(b - a).isNonNegative)
        #expect(b.fits(in: a))
        #expect(!a.fits(in: b))
        #expect(a.clamped(to: ResourceVector(cpus: 8, ram: GiB, disk: 100, gpus: 0))
            == ResourceVector(cpus: 1.5, ram: GiB, disk: 10, gpus: 0))
        #expect(a.cpus == 1.5)
        #expect(ResourceVector(cpus: 0.0004).milliCPUs == 0)
    }

    @Test func summary() {
        #expect(ResourceVector(cpus: 4, ram: 8 * GiB).summary == "cpus 4, ram 8GiB")
        #expect(ResourceVector(cpus: 0.5, ram: 0, disk: GiB, gpus: 2).summary == "cpus 0.5, ram 0B, disk 1GiB, gpus 2")
    }

    @Test func roundTrip() throws {
        let value = ResourceVector(cpus: 2.25, ram: 3 * GiB, disk: 7, gpus: 2)
        #expect(try Wire.decode(ResourceVector.self, try Wire.string(value)) == value)
        let needs = requirements(cpus: 0.5, ram: MiB, tags: ["a", "b"])
        #expect(try Wire.decode(TaskRequirements.self, try Wire.string(needs)) == needs)
    }

    @Test func agentResourcesDefaultToZero() throws {
        #expect(try Wire.decode(ResourceVector.self, "{}") == .zero)
        // ...while a task's requirements default to one CPU.
        #expect(try Wire.decode(TaskRequirements.self, "{}") == .default)
    }
}
