import Foundation
import Prometheus
import Synchronization

/// Counters about the master itself, for `/v1/master` and `/metrics` (Prometheus text
/// through swift-prometheus). Recent request durations are also kept in a small ring, for
/// the percentiles of `/v1/master`.
public final class MasterStats: Sendable {
    public let startedAt = Date()
    let registry = PrometheusCollectorRegistry()
    private let requests: Counter
    private let unhandled: Counter
    private let claims: Counter
    private let steals: Counter
    private let rateLimited: Counter
    private let claimWakeups: Counter
    private let handoffs: Counter
    /// The claims signal's count of waiters woken, as last added to `claimWakeups`.
    private let wakeupsReported = Mutex<UInt64>(0)
    private let durations: DurationHistogram
    private let recent = Mutex<(samples: [Double], next: Int, requests: Int, unhandled: Int, claims: Int, steals: Int)>(
        ([], 0, 0, 0, 0, 0))
    static let ringSize = 4096

    public init() {
        requests = registry.makeCounter(descriptor: .paddock("paddock_http_requests_total", help: "HTTP requests answered"))
        unhandled = registry.makeCounter(descriptor: .paddock("paddock_unhandled_errors_total", help: "Requests that failed with an unexpected error (500)"))
        claims = registry.makeCounter(descriptor: .paddock("paddock_claims_total", help: "Claims answered"))
        steals = registry.makeCounter(descriptor: .paddock("paddock_tasks_stolen_total", help: "Tasks re-leased from a backlogged agent to an idle one"))
        rateLimited = registry.makeCounter(descriptor: .paddock("paddock_rate_limited_total", help: "Requests answered 429 by the rate limit"))
        claimWakeups = registry.makeCounter(descriptor: .paddock(
            "paddock_claim_wakeups_total", help: "Held claims woken because new work may fit them (each runs a claim)"))
        handoffs = registry.makeCounter(descriptor: .paddock(
            "paddock_claim_handoffs_total", help: "Held claims answered with leases a submission made in its own transaction"))
        durations = registry.makeDurationHistogram(
            descriptor: .paddock("paddock_http_request_duration_seconds", help: "Time to answer a request (long-polls excluded)"),
            buckets: [.microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                      .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1), .seconds(5)])
    }

    func recordRequest(_ duration: Duration?) {
        requests.increment()
        let milliseconds = duration.map { Double($0.components.seconds) * 1000 + Double($0.components.attoseconds) / 1e15 }
        if let duration { durations.record(duration) }
        recent.withLock { state in
            state.requests += 1
            guard let milliseconds else { return }
            if state.samples.count < Self.ringSize { state.samples.append(milliseconds) } else { state.samples[state.next] = milliseconds }
            state.next = (state.next + 1) % Self.ringSize
        }
    }

    func recordUnhandled() {
        unhandled.increment()
        recent.withLock { $0.unhandled += 1 }
    }

    func recordClaim() {
        claims.increment()
        recent.withLock { $0.claims += 1 }
    }

    /// A held claim answered with the leases a submission handed it (`HeldClaims`).
    func recordHandoff() { handoffs.increment() }

    func recordSteals(_ count: Int) {
        steals.increment(by: Int64(count))
        recent.withLock { $0.steals += count }
    }

    func recordRateLimited() { rateLimited.increment() }

    /// Brings `paddock_claim_wakeups_total` up to `total`, the claims signal's own count (read at a scrape).
    func syncClaimWakeups(_ total: UInt64) {
        let added = wakeupsReported.withLock { reported -> UInt64 in
            defer { reported = max(reported, total) }
            return total > reported ? total - reported : 0
        }
        if added > 0 { claimWakeups.increment(by: Int64(clamping: added)) }
    }

    public var unhandledErrors: Int { recent.withLock { $0.unhandled } }
    public var claimsAnswered: Int { recent.withLock { $0.claims } }
    public var tasksStolen: Int { recent.withLock { $0.steals } }
    public var requestsAnswered: Int { recent.withLock { $0.requests } }

    /// p50/p90/p99 of the recent request durations, in milliseconds.
    public func percentiles() -> (p50: Double, p90: Double, p99: Double) {
        let sorted = recent.withLock { $0.samples }.sorted()
        guard !sorted.isEmpty else { return (0, 0, 0) }
        func at(_ q: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * q))] }
        return (at(0.5), at(0.9), at(0.99))
    }
}

extension MetricNameDescriptor {
    /// A metric named in full (`paddock_tasks`, `paddock_http_requests_total`): the name as it is
    /// scraped, unit included, without splitting it into the descriptor's parts.
    static func paddock(_ name: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}
