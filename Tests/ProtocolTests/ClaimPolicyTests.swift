import PaddockProtocol
import Testing

@Suite("ClaimPolicy.select")
struct ClaimPolicyTests {
    let policy = ClaimPolicy()

    func candidate(_ n: Int64, _ requirements: TaskRequirements = requirements()) -> ClaimPolicy.Candidate {
        .init(task: TaskID(rawValue: n), job: JobID(rawValue: 1), requirements: requirements)
    }

    func claimer(cpus: Double = 4, ram: Int64 = 8 * GiB, disk: Int64 = 100 * GiB, gpus: Int64 = 0,
                 tags: Set<String> = [], slots: Int = 16) -> ClaimPolicy.Claimer {
        .init(free: ResourceVector(cpus: cpus, ram: ram, disk: disk, gpus: gpus), tags: tags, slots: slots)
    }

    func ids(_ chosen: [ClaimPolicy.Candidate]) -> [Int64] { chosen.map(\.task.rawValue) }

    @Test func takesATaskThatFitsExactly() {
        let chosen = policy.select(from: [candidate(1, requirements(cpus: 4, ram: 8 * GiB, disk: 100 * GiB))],
                                   for: claimer())
        #expect(ids(chosen) == [1])
    }

    @Test("each resource is checked", arguments: [
        requirements(cpus: 4.001),
        requirements(ram: 8 * GiB + 1),
        requirements(disk: 100 * GiB + 1),
        requirements(gpus: 1),
    ])
    func skipsWhatDoesNotFit(_ tooBig: TaskRequirements) {
        let chosen = policy.select(from: [candidate(1, tooBig), candidate(2)], for: claimer())
        #expect(ids(chosen) == [2])
    }

    @Test func gpusFitWhenTheAgentHasThem() {
        let chosen = policy.select(from: [candidate(1, requirements(gpus: 2)), candidate(2, requirements(gpus: 1))],
                                   for: claimer(gpus: 2))
        #expect(ids(chosen) == [1])
    }

    @Test func fractionalCPUsAddUpExactly() {
        // 0.1 ten times is not 1.0 in floating point; in milli-CPUs it is.
        let tasks = (1...11).map { candidate(Int64($0), requirements(cpus: 0.1)) }
        #expect(ids(policy.select(from: tasks, for: claimer(cpus: 1))) == Array(1...10))
    }

    /// Queue order is the candidates' own (priority, then age), whatever order they arrive in:
    /// the store merges several windows of the queue.
    @Test func keepsQueueOrder() {
        let tasks = [5, 3, 9, 1, 7].map { candidate(Int64($0)) }
        #expect(ids(policy.select(from: tasks, for: claimer(cpus: 16))) == [1, 3, 5, 7, 9])
        var urgent = candidate(8)
        urgent.priority = 5
        #expect(ids(policy.select(from: tasks + [urgent], for: claimer(cpus: 16, slots: 2))) == [8, 1])
    }

    /// Among equal priorities, the owner with the fewest tasks leased goes first (fair share), then age.
    @Test func fairShareAmongOwnersOfEqualPriority() {
        let big = (1...200).map { n -> ClaimPolicy.Candidate in
            var c = candidate(Int64(n))
            c.owner = "alice"
            return c
        }
        let small = (201...205).map { n -> ClaimPolicy.Candidate in
            var c = candidate(Int64(n))
            c.owner = "bob"
            return c
        }
        var busy = claimer(cpus: 10, slots: 10)
        busy.ownerLoad = ["alice": 40]
        let chosen = policy.select(from: big + small, for: busy)
        #expect(ids(chosen).filter { $0 > 200 } == [201, 202, 203, 204, 205], "bob's tasks all go in this claim")
        // With equal loads they alternate.
        let even = policy.select(from: big + small, for: claimer(cpus: 4, slots: 4))
        #expect(Set(even.map(\.owner)) == ["alice", "bob"])
    }

    @Test func prefetchTakesTasksThatFitTheTotalsEachOnItsOwn() {
        let tasks = (1...6).map { candidate(Int64($0), requirements(cpus: 3)) }
        let extra = policy.prefetch(from: tasks, total: ResourceVector(cpus: 4, ram: 8 * GiB, disk: 100 * GiB), tags: [],
                                    count: 4, ownerLoad: [:])
        #expect(ids(extra) == [1, 2, 3, 4])
        let tooBig = policy.prefetch(from: [candidate(9, requirements(cpus: 8))],
                                     total: ResourceVector(cpus: 4, ram: 8 * GiB, disk: 100 * GiB), tags: [], count: 4, ownerLoad: [:])
        #expect(tooBig.isEmpty)
    }

    @Test func aTooBigTaskAtTheHeadDoesNotBlockSmallerOnes() {
        let tasks = [candidate(1, requirements(cpus: 64)), candidate(2, requirements(cpus: 3)),
                     candidate(3, requirements(cpus: 2)), candidate(4, requirements(cpus: 1))]
        // 3 cpus taken, then 2 no longer fits the 1 left, then 1 does.
        #expect(ids(policy.select(from: tasks, for: claimer(cpus: 4))) == [2, 4])
    }

    @Test func requiredTagsMustAllBeCarried() {
        let tasks = [candidate(1, requirements(tags: ["gpu"])),
                     candidate(2, requirements(tags: ["gpu", "linux"])),
                     candidate(3, requirements(tags: ["mac"])),
                     candidate(4)]
        #expect(ids(policy.select(from: tasks, for: claimer(tags: []))) == [4])
        #expect(ids(policy.select(from: tasks, for: claimer(tags: ["gpu"]))) == [1, 4])
        #expect(ids(policy.select(from: tasks, for: claimer(tags: ["gpu", "linux", "extra"]))) == [1, 2, 4])
    }

    @Test func severalTasksPerClaimUntilResourcesRunOut() {
        let tasks = (1...6).map { candidate(Int64($0), requirements(cpus: 1, ram: 2 * GiB)) }
        // cpus would allow 4, ram (8 GiB) allows 4 as well; the 5th and 6th wait.
        #expect(ids(policy.select(from: tasks, for: claimer())) == [1, 2, 3, 4])
        // ram is the tighter bound here.
        #expect(ids(policy.select(from: tasks, for: claimer(cpus: 16, ram: 5 * GiB))) == [1, 2])
    }

    @Test func slotsLimitTheCount() {
        let tasks = (1...10).map { candidate(Int64($0), requirements(cpus: 0)) }
        #expect(ids(policy.select(from: tasks, for: claimer(slots: 3))) == [1, 2, 3])
        #expect(ids(policy.select(from: tasks, for: claimer(slots: 1))) == [1])
        #expect(policy.select(from: tasks, for: claimer(slots: 0)).isEmpty)
        #expect(policy.select(from: tasks, for: claimer(slots: -1)).isEmpty)
    }

    @Test func nothingFromNothing() {
        #expect(policy.select(from: [], for: claimer()).isEmpty)
        #expect(policy.select(from: [candidate(1)], for: claimer(cpus: 0)).isEmpty)
    }

    @Test func anOvercommittedClaimerGetsNothing() {
        // A negative component (more leased than the agent has) means nothing fits, not even a task of zero.
        let free = ResourceVector(cpus: 4, ram: -1)
        let chosen = policy.select(from: [candidate(1, requirements(cpus: 0))],
                                   for: .init(free: free, tags: [], slots: 4))
        #expect(chosen.isEmpty)
    }

    @Test func canEverRun() {
        let capacity = ResourceVector(cpus: 4, ram: 8 * GiB)
        #expect(ClaimPolicy.canEverRun(requirements(cpus: 4, ram: 8 * GiB), capacity: capacity, tags: []))
        #expect(!ClaimPolicy.canEverRun(requirements(cpus: 64), capacity: capacity, tags: []))
        #expect(!ClaimPolicy.canEverRun(requirements(tags: ["gpu"]), capacity: capacity, tags: ["cpu"]))
        #expect(ClaimPolicy.canEverRun(requirements(tags: ["gpu"]), capacity: capacity, tags: ["gpu", "cpu"]))
    }

    /// Random queues against random agents: never over-commits, keeps order, respects tags and
    /// slots, and is greedy (when slots are left, nothing skipped would still fit what is left).
    @Test func randomizedNeverOvercommits() {
        var rng = SeededGenerator(seed: 0x5EED_CAFE)
        let tagPool = ["gpu", "linux", "mac", "ssd"]
        for round in 0..<400 {
            let free = ResourceVector(milliCPUs: Int64.random(in: 0...16_000, using: &rng),
                                      ram: Int64.random(in: 0...(32 * GiB), using: &rng),
                                      disk: Int64.random(in: 0...(64 * GiB), using: &rng),
                                      gpus: Int64.random(in: 0...4, using: &rng))
            let tags = Set(tagPool.filter { _ in Bool.random(using: &rng) })
            let slots = Int.random(in: 0...8, using: &rng)
            let candidates = (0..<Int.random(in: 0...30, using: &rng)).map { n in
                let needs = TaskRequirements(
                    resources: ResourceVector(milliCPUs: Int64.random(in: 0...6_000, using: &rng),
                                              ram: Int64.random(in: 0...(12 * GiB), using: &rng),
                                              disk: Int64.random(in: 0...(20 * GiB), using: &rng),
                                              gpus: Int64.random(in: 0...2, using: &rng) == 2 ? 1 : 0),
                    tags: Int.random(in: 0...3, using: &rng) == 0 ? [tagPool.randomElement(using: &rng)!] : [])
                return candidate(Int64(n + 1), needs)
            }
            let claimer = ClaimPolicy.Claimer(free: free, tags: tags, slots: slots)
            let chosen = policy.select(from: candidates, for: claimer)

            let used = chosen.reduce(ResourceVector.zero) { $0 + $1.requirements.resources }
            #expect(used.fits(in: free), "round \(round): \(used) over \(free)")
            #expect(chosen.count <= max(slots, 0), "round \(round)")
            #expect(chosen.allSatisfy { Set($0.requirements.tags).isSubset(of: tags) }, "round \(round)")
            let order = chosen.map(\.task.rawValue)
            #expect(order == order.sorted(), "round \(round): queue order lost")
            #expect(Set(order).count == order.count, "round \(round): a task chosen twice")
            if chosen.count < slots {
                let left = free - used
                let chosenIDs = Set(chosen.map(\.task))
                for skipped in candidates where !chosenIDs.contains(skipped.task) {
                    #expect(!ClaimPolicy.canEverRun(skipped.requirements, capacity: left, tags: tags),
                            "round \(round): \(skipped.task) was skipped but fits what is left")
                }
            }
        }
    }
}
