import Foundation

/// `GET /v1/jobs/{id}/graph`: how a job's tasks depend on each other, and the jobs it runs after
/// (what the dashboard draws as a DAG; the tasks themselves come from `/v1/tasks?job=`).
public struct JobGraph: Codable, Sendable, Equatable {
    /// `[dependency, dependent]` pairs: the second task waits for the first to succeed.
    public var edges: [[TaskID]]
    /// Jobs this one runs after (`after`).
    public var after: [JobID]
    /// True when the job has more edges than the answer carries (at most `JobGraph.maxEdges`).
    public var truncated: Bool

    public static let maxEdges = 20_000

    public init(edges: [[TaskID]], after: [JobID], truncated: Bool) {
        self.edges = edges
        self.after = after
        self.truncated = truncated
    }
}

/// `GET /v1/throughput`: tasks that ended per minute over the last hour, oldest minute first.
public struct Throughput: Codable, Sendable, Equatable {
    /// The start of the first bucket.
    public var since: Date
    public var bucketSeconds: Int
    /// Runs that succeeded, per bucket.
    public var succeeded: [Int]
    /// Runs that failed (a failed attempt that is retried counts too), per bucket.
    public var failed: [Int]

    public init(since: Date, bucketSeconds: Int, succeeded: [Int], failed: [Int]) {
        self.since = since
        self.bucketSeconds = bucketSeconds
        self.succeeded = succeeded
        self.failed = failed
    }

    enum CodingKeys: String, CodingKey {
        case since, succeeded, failed
        case bucketSeconds = "bucket_seconds"
    }
}

/// `GET /v1/changes`: where the farm's visible state stands (opaque; equal versions, nothing new).
public struct ChangesView: Codable, Sendable, Equatable {
    public var version: String
    public init(version: String) { self.version = version }
}
