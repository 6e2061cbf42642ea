import Foundation
@testable import PaddockMaster
import PaddockProtocol
import Testing

/// Directed wake-ups (issue 14, item 4): new work wakes the held claims whose room fits it, at
/// most one per new task, not every waiting agent.
@Suite struct DirectedWakeTests {
    static let job = JobID(rawValue: 1)

    static func shape(cpus: Double = 1, gpus: Int64 = 0, tags: [String] = [], job: JobID = job) -> (TaskRequirements, JobID) {
        (TaskRequirements(resources: ResourceVector(cpus: cpus, gpus: gpus), tags: tags), job)
    }

    static func work(_ shapes: [(TaskRequirements, JobID)]) -> NewWork {
        var work = NewWork()
        for (requirements, job) in shapes { work.add(requirements, job: job) }
        return work
    }

    static func room(cpus: Double, gpus: Int64 = 0, tags: Set<String> = [], blocked: Set<JobID> = []) -> WakeInterest {
        .work(ClaimRoom(fits: ResourceVector(cpus: cpus, ram: 8 << 30, gpus: gpus),
                        tags: tags, blockedJobs: blocked))
    }

    @Test func aTaskWakesTheOldestHeldClaimItFitsAndNoOther() {
        let waiters: [(id: Int, interest: WakeInterest)] = [
            (1, Self.room(cpus: 0.5)),           // too little room
            (2, Self.room(cpus: 4)),
            (3, Self.room(cpus: 4)),
            (4, .nothing),                       // a talkback-only hold
            (5, .everything),                    // not a claim: every notification
        ]
        #expect(WakePlan.choose(Self.work([Self.shape()]), among: waiters) == [2, 5])
        #expect(WakePlan.choose(Self.work([Self.shape(), Self.shape()]), among: waiters) == [2, 3, 5])
        #expect(WakePlan.choose(Self.work([Self.shape(cpus: 8)]), among: waiters) == [5], "fits no one")
        #expect(WakePlan.choose(NewWork(), among: waiters) == [5], "nothing new")
        #expect(WakePlan.choose(NewWork.anything, among: waiters) == [1, 2, 3, 5], "every held claim, no talkback-only hold")
    }

    @Test func gpusTagsAndBlocklistsDecideWhoIsWoken() {
        let other = JobID(rawValue: 2)
        let waiters: [(id: Int, interest: WakeInterest)] = [
            (1, Self.room(cpus: 8)),
            (2, Self.room(cpus: 8, gpus: 1, blocked: [other])),
            (3, Self.room(cpus: 8, tags: ["os:linux", "blender"])),
            (4, Self.room(cpus: 8, gpus: 2)),
            (5, .work(.none)),                   // drained, or every slot busy
        ]
        #expect(WakePlan.choose(Self.work([Self.shape(gpus: 1)]), among: waiters) == [2])
        #expect(WakePlan.choose(Self.work([Self.shape(gpus: 1, job: other)]), among: waiters) == [4], "2 is blocked by the job")
        #expect(WakePlan.choose(Self.work([Self.shape(tags: ["blender"])]), among: waiters) == [3])
        #expect(WakePlan.choose(Self.work([Self.shape(tags: ["any:os:windows:linux"])]), among: waiters) == [3])
        #expect(WakePlan.choose(Self.work([Self.shape(tags: ["maya"])]), among: waiters).isEmpty)
        // Two kinds, three tasks: each claim that fits one of them, up to three.
        #expect(WakePlan.choose(Self.work([Self.shape(gpus: 2), Self.shape(tags: ["blender"]), Self.shape(gpus: 2)]),
                                among: waiters) == [3, 4])
        #expect(WakePlan.choose(NewWork.anything, among: waiters) == [1, 2, 3, 4, 5])
    }

    @Test func tooManyKindsAreCountedWithoutTheirShapes() {
        var work = NewWork()
        for cpus in 1...(NewWork.shapeLimit + 1) { work.add(Self.shape(cpus: Double(cpus)).0, job: Self.job) }
        #expect(work.shapes == nil)
        #expect(work.count == NewWork.shapeLimit + 1)
        #expect(!work.isAnything)
        // Unshaped: any held claim that may take something, still one per task.
        let waiters: [(id: Int, interest: WakeInterest)] = [(1, .work(.none)), (2, Self.room(cpus: 1)), (3, Self.room(cpus: 1))]
        #expect(WakePlan.choose(NewWork.unshaped(1), among: waiters) == [2])
        var union = Self.work([Self.shape()])
        union.formUnion(Self.work([Self.shape(), Self.shape(gpus: 1)]))
        #expect(union.count == 3 && union.shapes?.count == 2)
        union.formUnion(.anything)
        #expect(union.isAnything)
    }

    /// What crosses to the other masters (PostgreSQL NOTIFY): the work itself, so that they direct
    /// their wake-ups too; `anything` as the bare channel name, as earlier masters sent it.
    @Test func aWakeUpCrossesMastersWithItsWork() throws {
        #expect(WakePayload.encode(.claims, .anything) == "claims")
        #expect(WakePayload.encode(.commands, .anything) == "commands")
        let work = Self.work([Self.shape(gpus: 1), Self.shape(tags: ["blender"], job: JobID(rawValue: 9)), Self.shape(gpus: 1)])
        let payload = WakePayload.encode(.claims, work)
        #expect(payload.hasPrefix("claims {"))
        let decoded = try #require(WakePayload.decode(payload))
        #expect(decoded.0 == .claims)
        #expect(decoded.1 == work)
        // Too long for a payload: the count goes without the shapes.
        let tag = String(repeating: "x", count: 200)
        let big = Self.work((0..<NewWork.shapeLimit).map { Self.shape(tags: ["\(tag)\($0)"]) })
        let trimmed = try #require(WakePayload.decode(WakePayload.encode(.claims, big)))
        #expect(trimmed.1 == .unshaped(NewWork.shapeLimit))
        #expect(WakePayload.encode(.claims, big).utf8.count <= WakePayload.limit)
        // Unreadable work is anything; an unknown channel is nothing.
        #expect(WakePayload.decode("claims {not json")?.1 == .anything)
        #expect(WakePayload.decode("claims")?.1 == .anything)
        #expect(WakePayload.decode("gossip {}") == nil)
    }

    /// The signal itself: a directed notification fires the chosen waiters only; the others keep
    /// waiting until a notification for them, their timeout or the signal's close.
    @Test func theSignalWakesOnlyTheChosenWaiters() async throws {
        let signal = WakeSignal(.claims)
        let cpuOnly = Task { await signal.wait(since: 0, timeout: .seconds(60), key: 1, interest: Self.room(cpus: 4)) }
        let gpu = Task { await signal.wait(since: 0, timeout: .seconds(60), key: 2, interest: Self.room(cpus: 4, gpus: 1)) }
        let talkbackOnly = Task { await signal.wait(since: 0, timeout: .seconds(60), key: 3, interest: .nothing) }
        try await waitUntil { await signal.waiting == 3 }
        await signal.notify(Self.work([Self.shape(gpus: 1)]))
        await gpu.value
        #expect(await signal.woken == 1)
        #expect(await signal.waiting == 2)
        await signal.notify(NewWork())
        #expect(await signal.woken == 1, "nothing new wakes no one")
        await signal.notifyAll()
        await cpuOnly.value
        #expect(await signal.woken == 2, "anything wakes the held claim, not the talkback-only hold")
        #expect(await signal.waiting == 1)
        await signal.close()
        await talkbackOnly.value
        #expect(await signal.waiting == 0)
    }

    /// Through the API: five agents hold an exchange each. A job's one task is leased to one held
    /// claim (the one it fits) in the submission's own transaction, two tasks to two, with no
    /// wake-up; a talkback-only hold is never woken; a task retried after a failure wakes a held
    /// claim, which claims it; and both counts are on /metrics.
    @Test func newWorkReachesAsManyHeldClaimsAsItHasTasksAndOnlyWhereItFits() async throws {
        let fixture = try TestMaster()
        let wake = fixture.master.wake
        try await fixture.test { client in
            var agents: [(id: AgentID, credential: String)] = []
            for index in 0..<4 { agents.append(try await client.enroll("cpu-\(index)")) }
            let (taggedID, taggedCredential) = try await client.enroll("render", tags: ["blender"])
            let tagged = (id: taggedID, credential: taggedCredential)
            let (listenerID, listenerCredential) = try await client.enroll("listener")
            let listener = (id: listenerID, credential: listenerCredential)
            // With their capacity, as agents send it: a held claim is then one a submission can lease to.
            let held = ExchangeRequest(claim: ClaimRequest(slots: 1, wait: 60, capacity: 1), talkback: TalkbackPoll(after: 0, wait: 60))
            try await withThrowingTaskGroup(of: (AgentID, ExchangeResponse).self) { group in
                for agent in agents + [tagged] {
                    group.addTask { (agent.id, try await client.exchange(agent.id, agent.credential, held)) }
                }
                group.addTask {
                    (listener.id, try await client.exchange(listener.id, listener.credential,
                                                           ExchangeRequest(talkback: TalkbackPoll(after: 0, wait: 60))))
                }
                try await waitUntil { await wake.waiting == 6 }
                let before = await wake.woken

                // One task only the tagged agent can run: it alone is handed it.
                var render = echoJob("render")
                render.tasks[0].requirements = TaskRequirements(resources: ResourceVector(cpus: 1), tags: ["blender"])
                _ = try await client.submit(render)
                #expect(await wake.woken == before)
                let (first, answer) = try #require(try await group.next())
                #expect(first == tagged.id)
                #expect(answer.leases.count == 1)

                // Two plain tasks: two of the four untagged claims are handed one each.
                _ = try await client.submit(echoJob("two", tasks: 2))
                #expect(await wake.woken == before)
                var leased: [AgentID: [TaskLease]] = [:]
                for _ in 0..<2 {
                    let (agent, answer) = try #require(try await group.next())
                    leased[agent] = answer.leases
                }
                #expect(leased.values.map(\.count) == [1, 1])
                #expect(Set(leased.keys).isSubset(of: Set(agents.map(\.id))))
                try await waitUntil { await wake.waiting == 3 }  // two claims and the talkback-only hold

                // A failed run queued again by its agent's exchange wakes one of the two held claims.
                let (failer, lease) = try #require(leased.first.map { ($0.key, $0.value[0]) })
                let credential = try #require(agents.first { $0.id == failer }?.credential)
                _ = try await client.exchange(failer, credential, ExchangeRequest(finished: [ExchangeFinish(
                    task: lease.task, report: FinishReport(epoch: lease.epoch, outcome: .failed, exitCode: 1))]))
                #expect(await wake.woken == before + 1)
                let (retrier, retried) = try #require(try await group.next())
                #expect(retried.leases.map(\.task) == [lease.task])
                #expect(retrier != failer && retrier != listener.id)

                let metrics = try await client.send(.get, "/metrics")
                let lines = String(decoding: metrics.body, as: UTF8.self).split(separator: "\n")
                #expect(lines.first { $0.hasPrefix("paddock_claim_wakeups_total ") } == "paddock_claim_wakeups_total \(before + 1)")
                #expect(lines.first { $0.hasPrefix("paddock_claim_handoffs_total ") } == "paddock_claim_handoffs_total 3")

                // The rest answer when superseded by their agents' next exchanges (no wake-up counted).
                for agent in agents + [listener] where agent.id != retrier && leased[agent.id] == nil {
                    _ = try await client.exchange(agent.id, agent.credential, ExchangeRequest())
                }
                for try await (_, answer) in group { #expect(answer.leases.isEmpty) }
                #expect(await wake.woken == before + 1)
            }
        }
    }
}

extension DirectedWakeTests {
    /// A held claim that does not say its agent's capacity (an older agent) is not handed work by a
    /// submission (the master could not count its busy slots): it is woken and claims, as before.
    @Test func aHeldClaimWithoutItsCapacityIsWokenNotHandedWork() async throws {
        let fixture = try TestMaster()
        let wake = fixture.master.wake
        try await fixture.test { client in
            let (agent, credential) = try await client.enroll("old")
            try await withThrowingTaskGroup(of: ExchangeResponse.self) { group in
                group.addTask {
                    try await client.exchange(agent, credential, ExchangeRequest(claim: ClaimRequest(slots: 1, wait: 60)))
                }
                try await waitUntil { await wake.waiting == 1 }
                let before = await wake.woken
                _ = try await client.submit(echoJob("one"))
                let answer = try #require(try await group.next())
                #expect(answer.leases.count == 1)
                #expect(await wake.woken == before + 1)
                let metrics = String(decoding: try await client.send(.get, "/metrics").body, as: UTF8.self)
                #expect(metrics.split(separator: "\n").contains("paddock_claim_handoffs_total 0"))
            }
        }
    }
}

/// Polls `condition` every 10 ms for up to 30 s (a generous bound for a busy machine).
private func waitUntil(_ condition: @Sendable () async -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(30)
    while !(await condition()) {
        guard ContinuousClock.now < deadline else { throw CancellationError() }
        try await Task.sleep(for: .milliseconds(10))
    }
}
