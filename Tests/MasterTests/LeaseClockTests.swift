import Foundation
@testable import PaddockMaster
import Testing

/// The clock leases are measured on: the database's time carried forward on a monotonic clock.
@Suite struct LeaseClockTests {
    @Test func itCarriesTheDatabasesTimeForwardAndMeasuresASteps() {
        let start = ContinuousClock.now - .seconds(60)  // readings a minute ago and since
        let clock = LeaseClock(now: Date(timeIntervalSince1970: 1_000))
        // The database says 1 000 s at `start`; 10 s later by the monotonic clock, it says 1 010 s: no step.
        clock.sync(Date(timeIntervalSince1970: 1_000), at: start)  // the first reading
        #expect(abs(clock.sync(Date(timeIntervalSince1970: 1_010), at: start + .seconds(10))) < 1e-6)
        // Its clock stepped an hour ahead: the jump is measured, and followed.
        #expect(abs(clock.sync(Date(timeIntervalSince1970: 4_620), at: start + .seconds(20)) - 3_600) < 1e-6)
        #expect(abs(clock.sync(Date(timeIntervalSince1970: 4_630), at: start + .seconds(30))) < 1e-6)
        // Between readings it moves with the monotonic clock, whatever this host's wall clock does.
        let now = clock.now().timeIntervalSince1970
        #expect(now >= 4_630 + 29 && now < 4_630 + 3_600)
    }
}
