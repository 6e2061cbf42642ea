import Foundation

/// A token bucket's figures: `rate` requests per second sustained, bursts of up to `burst`.
/// Written `RATE/BURST` (`50/200`, `0.5/10`) on the command line and in config files; `off` is nil.
public struct RateLimit: Sendable, Equatable, CustomStringConvertible {
    public var rate: Double
    public var burst: Double

    public init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = burst
    }

    /// Each token (user, script, join token) and each address without a token: generous enough that
    /// no farm's clients meet it (the benchmark enrolls 2 000 agents at ~1 300/s with one join token),
    /// low enough that a runaway loop is slowed before the database is.
    public static let clientDefault = RateLimit(rate: 1000, burst: 2000)

    /// `RATE/BURST` with RATE > 0 and BURST ≥ 1; `off` parses as `.some(nil)`; anything else is nil.
    public static func parse(_ text: String) -> RateLimit?? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "off" { return .some(nil) }
        let parts = trimmed.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let rate = Double(parts[0]), let burst = Double(parts[1]),
              rate.isFinite, burst.isFinite, rate > 0, rate <= 1_000_000, burst >= 1, burst <= 10_000_000 else { return nil }
        return .some(RateLimit(rate: rate, burst: burst))
    }

    public var description: String { "\(Self.figure(rate))/\(Self.figure(burst))" }

    static func figure(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}
