import Foundation
import Synchronization

/// The clock leases are measured on: the database's. Masters sharing one PostgreSQL each read the
/// database's time (at start and at every sweep) and carry it forward on their own monotonic clock,
/// so a master's wall clock, skewed or stepped, never decides when a lease runs out, and every
/// master grants and expires leases on one time line. SQLite's single master is its own database:
/// it follows its host's wall clock the same way, so a step of that clock shows up at the next
/// sweep as one jump, which the sweeper answers with a grace instead of expiring every lease.
public final class LeaseClock: Sendable {
    private let anchor: Mutex<(wall: Date, monotonic: ContinuousClock.Instant)>

    public init(now: Date = Date()) {
        anchor = Mutex((now, ContinuousClock.now))
    }

    /// The database's time now, as carried forward since the last reading.
    public func now() -> Date {
        let (wall, monotonic) = anchor.withLock { ($0.wall, $0.monotonic) }
        return wall.addingTimeInterval(Self.seconds(ContinuousClock.now - monotonic))
    }

    /// Follows a reading of the database's clock taken at `instant`; returns how far the reading is
    /// from what this clock said then (positive: the database's clock is ahead).
    @discardableResult
    public func sync(_ reading: Date, at instant: ContinuousClock.Instant = .now) -> TimeInterval {
        anchor.withLock { anchor in
            let predicted = anchor.wall.addingTimeInterval(Self.seconds(instant - anchor.monotonic))
            anchor = (reading, instant)
            return reading.timeIntervalSince(predicted)
        }
    }

    static func seconds(_ duration: Duration) -> TimeInterval {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
