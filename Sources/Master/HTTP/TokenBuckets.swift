import Foundation
import Synchronization

/// Token buckets of one `RateLimit` by key (a client), in bounded memory: a bucket left alone long enough to be full
/// again is the same as no bucket, so such buckets are dropped as the table is swept; past
/// `capacity` keys the least recently used go first.
final class TokenBuckets<Key: Hashable & Sendable>: Sendable {
    private struct Bucket {
        var tokens: Double
        var last: ContinuousClock.Instant
    }

    private struct Table {
        var buckets: [Key: Bucket] = [:]
        var lastSweep: ContinuousClock.Instant
    }

    private let table: Mutex<Table>
    let limit: RateLimit
    let capacity: Int
    /// How often the table is swept of full buckets (also whenever it is at capacity).
    static var sweepEvery: Duration { .seconds(10) }

    init(_ limit: RateLimit, capacity: Int = 100_000) {
        self.limit = limit
        self.capacity = max(1, capacity)
        table = Mutex(Table(lastSweep: .now))
    }

    /// Takes one token from `key`'s bucket: nil when there was one, else how long until there is.
    func take(_ key: Key, now: ContinuousClock.Instant = .now) -> Duration? {
        let limit = self.limit, capacity = self.capacity
        return table.withLock { table in
            if now - table.lastSweep >= Self.sweepEvery || table.buckets.count >= capacity && table.buckets[key] == nil {
                Self.sweep(&table, limit, now: now, capacity: capacity)
            }
            var bucket = table.buckets[key] ?? Bucket(tokens: limit.burst, last: now)
            bucket.tokens = min(limit.burst, bucket.tokens + max(0, (now - bucket.last).seconds) * limit.rate)
            bucket.last = now
            guard bucket.tokens >= 1 else {
                table.buckets[key] = bucket
                return .seconds((1 - bucket.tokens) / limit.rate)
            }
            bucket.tokens -= 1
            table.buckets[key] = bucket
            return nil
        }
    }

    /// How many buckets are held (for tests of the bound).
    var count: Int { table.withLock { $0.buckets.count } }

    private static func sweep(_ table: inout Table, _ limit: RateLimit, now: ContinuousClock.Instant, capacity: Int) {
        table.lastSweep = now
        // Full again by now: forgetting it changes nothing.
        table.buckets = table.buckets.filter { _, bucket in
            bucket.tokens + max(0, (now - bucket.last).seconds) * limit.rate < limit.burst
        }
        guard table.buckets.count >= capacity else { return }
        // Still full of busy clients (many addresses at once): drop the least recently used tenth.
        let drop = max(1, capacity / 10)
        for (key, _) in table.buckets.sorted(by: { $0.value.last < $1.value.last }).prefix(drop) {
            table.buckets[key] = nil
        }
    }
}

extension Duration {
    /// The duration in seconds, as a Double.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
