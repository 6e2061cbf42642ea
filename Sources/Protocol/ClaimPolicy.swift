/// Which queued tasks an agent gets: a pure function over values, so it is
/// tested without a database and used unchanged by every store.
public struct ClaimPolicy: Sendable {
    /// A queued task as the policy sees it. Candidates arrive in queue order
    /// (priority, then age); the policy keeps that order.
    public struct Candidate: Sendable, Equatable {
        public var task: TaskID
        public var job: JobID
        public var requirements: TaskRequirements
        public var priority: Int
        public var owner: String
        public init(task: TaskID, job: JobID, requirements: TaskRequirements, priority: Int = 0, owner: String = "") {
            self.task = task
            self.job = job
            self.requirements = requirements
            self.priority = priority
            self.owner = owner
        }
    }

    public struct Claimer: Sendable {
        public var free: ResourceVector
        public var tags: Set<String>
        public var slots: Int
        /// Tasks each owner has leased across the farm now: among equal priorities the least served owner goes first.
        public var ownerLoad: [String: Int]
        public init(free: ResourceVector, tags: Set<String>, slots: Int, ownerLoad: [String: Int] = [:]) {
            self.free = free
            self.tags = tags
            self.slots = slots
            self.ownerLoad = ownerLoad
        }
    }

    public init() {}

    /// True when an agent with `capacity` and `tags` could ever run a task with `requirements`.
    public static func canEverRun(_ requirements: TaskRequirements, capacity: ResourceVector, tags: Set<String>) -> Bool {
        requirements.resources.fits(in: capacity) && hasTags(requirements, tags)
    }

    /// True when an agent with `tags` has every tag the task needs (an `any:NAME:V1:V2` tag is met by
    /// any one of `NAME:V1`, `NAME:V2`: see `HostAttributes`).
    public static func hasTags(_ requirements: TaskRequirements, _ tags: Set<String>) -> Bool {
        requirements.tags.allSatisfy { HostAttributes.satisfies(tags, $0) }
    }

    /// Greedy: take the best candidate that still fits what is left, again and again until
    /// the slots are used. Best is the highest priority, then (fair share) the owner with the
    /// fewest tasks leased so far, counting the ones just chosen, then the oldest. A big task
    /// that does not fit does not block the smaller ones behind it.
    public func select(from candidates: [Candidate], for claimer: Claimer) -> [Candidate] {
        var left = claimer.free
        var load = claimer.ownerLoad
        var remaining = candidates.filter {
            Self.canEverRun($0.requirements, capacity: claimer.free, tags: claimer.tags)
        }
        var chosen: [Candidate] = []
        guard claimer.slots > 0, left.isNonNegative else { return [] }
        while chosen.count < claimer.slots {
            var best: Int?
            for (index, candidate) in remaining.enumerated()
            where candidate.requirements.resources.fits(in: left) {
                guard let current = best else { best = index; continue }
                if Self.precedes(candidate, remaining[current], load: load) { best = index }
            }
            guard let index = best else { break }
            let pick = remaining.remove(at: index)
            left = left - pick.requirements.resources
            load[pick.owner, default: 0] += 1
            chosen.append(pick)
        }
        return chosen
    }

    /// Prefetch: up to `count` more tasks, in the same order, each of which fits the agent's
    /// totals on its own (they start later, when room frees up).
    public func prefetch(from candidates: [Candidate], total: ResourceVector, tags: Set<String>, count: Int,
                         ownerLoad: [String: Int]) -> [Candidate] {
        var load = ownerLoad
        var remaining = candidates.filter { Self.canEverRun($0.requirements, capacity: total, tags: tags) }
        var chosen: [Candidate] = []
        while chosen.count < count, !remaining.isEmpty {
            var best = 0
            for index in remaining.indices.dropFirst() where Self.precedes(remaining[index], remaining[best], load: load) {
                best = index
            }
            let pick = remaining.remove(at: best)
            load[pick.owner, default: 0] += 1
            chosen.append(pick)
        }
        return chosen
    }

    static func precedes(_ a: Candidate, _ b: Candidate, load: [String: Int]) -> Bool {
        if a.priority != b.priority { return a.priority > b.priority }
        let (la, lb) = (load[a.owner] ?? 0, load[b.owner] ?? 0)
        if la != lb { return la < lb }
        return a.task < b.task
    }
}
