@testable import PaddockAgent
import Testing

/// The agent waits out retryable failures (see ClientTests' RetryClassificationTests) with `Backoff`.
@Suite struct BackoffTests {
    @Test func backoffGrowsWithJitterUpToItsCap() {
        var backoff = Backoff(base: 0.1, cap: 1)
        let delays = (0..<8).map { _ in backoff.next() }
        #expect(delays.allSatisfy { $0 <= .seconds(1) && $0 >= .milliseconds(50) })
        #expect(delays.suffix(3).allSatisfy { $0 >= .milliseconds(500) }, "capped, still jittered: \(delays)")
        backoff.reset()
        #expect(backoff.next() <= .milliseconds(100))
    }
}
