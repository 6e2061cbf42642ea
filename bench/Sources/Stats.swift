import Foundation

/// One number a measurement produced in one run.
struct Figure: Sendable {
    var name: String
    var unit: String
    var value: Double
    var note: String?

    init(_ name: String, _ value: Double, _ unit: String, note: String? = nil) {
        self.name = name
        self.value = value
        self.unit = unit
        self.note = note
    }
}

/// Order statistics of a sample.
enum Percentile {
    /// Nearest-rank percentile (`p` in 0...100) of `values`; nil when empty.
    static func of(_ values: [Double], _ p: Double) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }

    /// The median; for an even count, the mean of the two middle values.
    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }
}

/// p50 and p99 of latencies in seconds, as two figures in milliseconds.
func latencyFigures(_ name: String, _ seconds: [Double], note: String? = nil) -> [Figure] {
    let ms = seconds.map { $0 * 1000 }
    return [
        Figure("\(name) p50", Percentile.of(ms, 50) ?? .nan, "ms", note: note.map { "\($0); \(seconds.count) samples" }),
        Figure("\(name) p99", Percentile.of(ms, 99) ?? .nan, "ms"),
    ]
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// Times an async operation on the monotonic clock.
func timed<T>(_ body: () async throws -> T) async rethrows -> (T, Double) {
    let start = ContinuousClock.now
    let value = try await body()
    return (value, (ContinuousClock.now - start).seconds)
}
