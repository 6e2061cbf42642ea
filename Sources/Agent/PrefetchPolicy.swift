import PaddockProtocol

/// How many assigned leases the agent holds beyond what it runs, to start one the moment a slot
/// frees instead of a round trip later.
///
/// A fixed count suits a farm that knows its tasks. `auto`, the default, prefetches only while the
/// runs are short: then the round trip between a run's end and its successor's lease is a large
/// share of a slot's time, and a prefetched lease waits at most about a short run for its room. A
/// render frame of minutes gains nothing from it, and a lease held that long would keep the task
/// from an agent that frees up meanwhile (stealing takes it back, but only from the master's
/// next claim on).
public enum PrefetchPolicy: Sendable, Equatable, CustomStringConvertible {
    case fixed(Int)
    case auto

    /// Runs at most this long count as short.
    public static let shortRun: Duration = .milliseconds(500)
    /// Runs at most this long are so short that the agent holds several leases per slot, about
    /// `prefetchedWork` of them (two at least, `mostPerSlot` at most): its exchanges then refill half
    /// of them at once (see `Workload.canCoalesce`), several runs per round trip.
    public static let veryShortRun: Duration = .milliseconds(50)
    /// How much work (by the median run) a slot holds prefetched when runs are very short. Runs of a
    /// few milliseconds fill eight leases per slot: on 2 slots that took a fifth off the master's
    /// and the agent's CPU per task against two per slot (exchanges carry twice the reports).
    public static let prefetchedWork: Duration = .milliseconds(100)
    public static let mostPerSlot = 8
    /// Beyond two per slot, an agent holds at most this many prefetched leases in all: a wide agent
    /// refills from many slots' runs per exchange anyway.
    public static let deepPrefetchCap = 32
    /// How many of the last runs `auto` looks at, and how many it needs before it prefetches.
    public static let window = 8
    public static let fewestRuns = 3

    /// The leases to hold beyond what runs, given the lengths of the last runs (oldest first) and the
    /// agent's slots: with `auto`, one per slot while the median of the last runs is short, about
    /// `prefetchedWork` per slot while it is very short.
    public func count(recentRuns: [Duration], slots: Int) -> Int {
        switch self {
        case .fixed(let count):
            return count
        case .auto:
            let runs = recentRuns.suffix(Self.window).sorted()
            guard runs.count >= Self.fewestRuns, case let median = runs[runs.count / 2], median <= Self.shortRun else { return 0 }
            let slots = min(max(slots, 0), Limits.claimSlots)  // no overflow below, whatever `--slots` said
            guard median <= Self.veryShortRun else { return min(slots, Limits.claimSlots) }
            let perSlot = median <= .zero ? Self.mostPerSlot
                : min(Self.mostPerSlot, max(2, Int((Self.prefetchedWork / median).rounded(.down))))
            return min(slots * perSlot, max(2 * slots, Self.deepPrefetchCap), Limits.claimSlots)
        }
    }

    /// `auto` or a count between 0 and `Limits.claimSlots`, as `--prefetch` and `prefetch:` take it.
    public init?(_ text: String) {
        if text == "auto" {
            self = .auto
        } else if let count = Int(text), (0...Limits.claimSlots).contains(count) {
            self = .fixed(count)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .fixed(let count): String(count)
        case .auto: "auto"
        }
    }
}
