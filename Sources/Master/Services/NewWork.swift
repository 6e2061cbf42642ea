import PaddockProtocol

/// Work that became claimable in one transaction (a submission, a retry, dependents unblocked, a
/// lease given back): what it needs and how much there is, so that a wake-up goes to the held
/// claims it fits and not to every waiting agent (each woken claim is a claim transaction).
public struct NewWork: Sendable, Equatable {
    /// One kind of new task: what it needs, in which job (a job may block an agent after failures).
    public struct Shape: Hashable, Sendable {
        public var job: JobID
        public var requirements: TaskRequirements
    }

    /// The distinct kinds of new tasks; nil when they were too many to keep (then any claim that can
    /// take something may take them) or when what became claimable is not known (`anything`).
    public private(set) var shapes: Set<Shape>?
    /// How many tasks became claimable: at most this many held claims are woken.
    public private(set) var count: Int

    /// Nothing new.
    public init() {
        shapes = []
        count = 0
    }

    private init(shapes: Set<Shape>?, count: Int) {
        self.shapes = shapes
        self.count = count
    }

    /// Something changed that a held claim cannot be matched against (an agent undrained, a job
    /// resumed, leases swept): every held claim is woken, as before wake-ups were directed.
    public static let anything = NewWork(shapes: nil, count: .max)

    /// Beyond this many kinds the shapes are dropped: matching them all against every held claim would
    /// cost more than the claims it spares.
    static let shapeLimit = 32

    /// `count` tasks of kinds not known.
    static func unshaped(_ count: Int) -> NewWork { NewWork(shapes: nil, count: count) }

    /// `count` tasks of these kinds (as another master sent them; past the limit, without them).
    init(_ shapes: [(TaskRequirements, JobID)], count: Int) {
        self.init(shapes: Set(shapes.map { Shape(job: $0.1, requirements: $0.0) }), count: max(0, count))
        dropShapesPastLimit()
    }

    public var isEmpty: Bool { count == 0 }
    public var isAnything: Bool { shapes == nil && count == .max }

    /// `times` more tasks, each needing `requirements`, in `job`.
    public mutating func add(_ requirements: TaskRequirements, job: JobID, times: Int = 1) {
        guard !isAnything, times > 0 else { return }
        count += times
        shapes?.insert(Shape(job: job, requirements: requirements))
        dropShapesPastLimit()
    }

    /// `taken` of the tasks were leased already (handed to held exchanges in the transaction that
    /// made them claimable): that many fewer held claims are woken for them.
    public mutating func remove(taken: Int) {
        guard !isAnything, taken > 0 else { return }
        count = max(0, count - taken)
    }

    public mutating func formUnion(_ other: NewWork) {
        if other.isAnything || isAnything {
            self = .anything
            return
        }
        count += other.count
        if let theirs = other.shapes, shapes != nil { shapes?.formUnion(theirs) } else { shapes = nil }
        dropShapesPastLimit()
    }

    private mutating func dropShapesPastLimit() {
        if (shapes?.count ?? 0) > Self.shapeLimit { shapes = nil }
    }
}

/// What a held claim could take when its last claim round found nothing: the room a new task must
/// fit (its free room; its totals when it only prefetches; nil when it may take nothing now), the
/// agent's tags, and the jobs that have blocked it after failures.
public struct ClaimRoom: Sendable, Equatable {
    public var fits: ResourceVector?
    public var tags: Set<String>
    public var blockedJobs: Set<JobID>

    public init(fits: ResourceVector?, tags: Set<String> = [], blockedJobs: Set<JobID> = []) {
        self.fits = fits
        self.tags = tags
        self.blockedJobs = blockedJobs
    }

    /// A claim that may take nothing until something about its agent changes (drained, every slot busy).
    public static let none = ClaimRoom(fits: nil)

    /// Whether a task of `shape` could be leased into this room.
    func takes(_ shape: NewWork.Shape) -> Bool {
        guard let fits, !blockedJobs.contains(shape.job) else { return false }
        return shape.requirements.resources.fits(in: fits) && ClaimPolicy.hasTags(shape.requirements, tags)
    }
}

/// What a long-poll waits for on a `WakeSignal`.
public enum WakeInterest: Sendable, Equatable {
    /// Every notification (a log follower, a dashboard, a talkback poll).
    case everything
    /// Work that fits this room (a held claim).
    case work(ClaimRoom)
    /// No notification: only its supersession, its timeout or the master closing (an exchange held
    /// for its talkback commands alone, on the claims signal for its supersession).
    case nothing
}

/// Whom a notification wakes. Pure: the signal gives it its waiters, oldest first.
enum WakePlan {
    /// The waiters to wake for `work`: every one interested in everything; the held claims whose
    /// room takes some of the work, oldest first, at most one per new task (each woken claim leases
    /// at least one task or lost it to another); every held claim for `anything`.
    static func choose<ID>(_ work: NewWork, among waiters: [(id: ID, interest: WakeInterest)]) -> [ID] {
        var chosen: [ID] = []
        var claims = 0
        for (id, interest) in waiters {
            switch interest {
            case .everything:
                chosen.append(id)
            case .nothing:
                continue
            case .work(let room):
                if work.isAnything {
                    chosen.append(id)
                    continue
                }
                guard claims < work.count else { continue }
                let fits = work.shapes.map { $0.contains(where: room.takes) } ?? (room.fits != nil)
                if fits {
                    chosen.append(id)
                    claims += 1
                }
            }
        }
        return chosen
    }
}
