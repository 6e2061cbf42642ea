import Foundation
@testable import PaddockMaster
import Testing

/// The token buckets under the rate limit (issue 16): figures, refill, and bounded memory.
@Suite struct RateLimitBucketTests {
    @Test func figuresParse() {
        #expect(RateLimit.parse("50/200") == .some(RateLimit(rate: 50, burst: 200)))
        #expect(RateLimit.parse("0.5/10") == .some(RateLimit(rate: 0.5, burst: 10)))
        #expect(RateLimit.parse("off") == .some(nil))
        for bad in ["", "50", "0/10", "10/0", "-1/5", "a/b", "1/2/3", "inf/5"] { #expect(RateLimit.parse(bad) == nil, "\(bad)") }
        #expect(RateLimit.clientDefault.description == "1000/2000")
    }

    @Test func aBurstThenTheRate() {
        let buckets = TokenBuckets<String>(RateLimit(rate: 2, burst: 3))
        let start = ContinuousClock.now
        for _ in 0..<3 { #expect(buckets.take("a", now: start) == nil) }
        let wait = buckets.take("a", now: start)
        #expect(wait.map { $0 > .milliseconds(400) && $0 <= .milliseconds(500) } == true, "\(String(describing: wait))")
        #expect(buckets.take("b", now: start) == nil, "another client has its own bucket")
        #expect(buckets.take("a", now: start + .milliseconds(500)) == nil, "half a second at 2/s refills one")
        #expect(buckets.take("a", now: start + .milliseconds(500)) != nil)
    }

    @Test func fullBucketsAreForgottenAndTheTableIsBounded() {
        let buckets = TokenBuckets<Int>(RateLimit(rate: 10, burst: 10), capacity: 100)
        let start = ContinuousClock.now
        for key in 0..<100 { _ = buckets.take(key, now: start) }
        #expect(buckets.count == 100)
        // At capacity a new client sweeps: none is full again yet, so the least recently seen tenth goes.
        _ = buckets.take(1000, now: start + .milliseconds(10))
        #expect(buckets.count <= 91)
        // A second later every bucket is full again: the next sweep forgets them all.
        _ = buckets.take(2000, now: start + .seconds(11))
        #expect(buckets.count == 1)
    }
}
