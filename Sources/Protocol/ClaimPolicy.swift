/// Which queued tasks an agent gets: a pure function over values, so it is
/// tested without a database and used unchanged by every store.
public struct ClaimPolicy: Sendable {
    /// A queued task as the policy sees it. Candidates arrive in queue order
    /// (priority, then age); the policy keeps that order.
    public struct Candidate: Sendable, Equatable {
        public var task: TaskID
        public var job: JobID
        public var requirements: TaskRequirements
        public init(task: TaskID, job: JobID, requirements: TaskRequirements) {
            self.task = task
            self.job = job
            self.requirements = requirements
        }
    }

    public struct Claimer: Sendable {
        public var free: ResourceVector
        public var tags: Set<String>
        public var slots: Int
        public init(free: ResourceVector, tags: Set<String>, slots: Int) {
            self.free = free
            self.tags = tags
            self.slots = slots
        }
    }

    public init() {}

    /// True when an agent with `capacity` and `tags` could ever run a task with `requirements`.
    public static func canEverRun(_ requirements: TaskRequirements, capacity: ResourceVector, tags: Set<String>) -> Bool {
        requirements.resources.fits(in: capacity) && Set(requirements.tags).isSubset(of: tags)
    }

    /// Greedy in queue order: take each candidate that still fits what is left,
    /// skip the ones that do not (a big task at the head does not block small
    /// ones behind it), stop when the slots are used.
    public func select(from candidates: [Candidate], for claimer: Claimer) -> [Candidate] {
        var left = claimer.free
        var chosen: [Candidate] = []
        guard claimer.slots > 0, left.isNonNegative else { return [] }
        for candidate in candidates {
            guard chosen.count < claimer.slots else { break }
            guard Self.canEverRun(candidate.requirements, capacity: left, tags: claimer.tags) else { continue }
            left = left - candidate.requirements.resources
            chosen.append(candidate)
        }
        return chosen
    }
}
