/// The life of a task (docs/ARCHITECTURE.md §2). The legal moves are one table,
/// `TaskTransition.rule`; the store conditions every update on it, so no code
/// path can move a task along an edge that is not in the table.
public enum TaskState: String, Codable, Sendable, CaseIterable {
    case blocked, queued, assigned, running, succeeded, failed, cancelled

    /// Finished for good (until a user retries it).
    public var isTerminal: Bool { self == .succeeded || self == .failed || self == .cancelled }
    /// Holds a lease: an agent has it.
    public var isLeased: Bool { self == .assigned || self == .running }

    /// The state reached by `transition`, or an error when the table has no such edge.
    public func applying(_ transition: TaskTransition) throws(IllegalTransition) -> TaskState {
        let rule = transition.rule
        guard rule.from.contains(self) else { throw IllegalTransition(from: self, transition: transition) }
        return rule.to
    }
}

public struct IllegalTransition: Error, Equatable, Sendable {
    public let from: TaskState
    public let transition: TaskTransition
}

/// Every way a task changes state; each is recorded in the task's history.
public enum TaskTransition: String, Codable, Sendable, CaseIterable {
    /// All dependencies succeeded.
    case unblock
    /// A claim leased it to an agent (new epoch).
    case assign
    /// The agent launched its process.
    case start
    case succeed
    /// Failed with no attempts left.
    case fail
    /// Failed, attempts left: back to the queue.
    case retryAfterFailure = "retry_after_failure"
    case cancel
    /// The lease ran out (agent silent) or the agent gave it back (released):
    /// back to the queue. From `running` the attempt counts.
    case expireLease = "expire_lease"
    case release
    /// A user asked for another go at a failed or cancelled task.
    case retry
    /// Work stealing as masters before session 8 recorded it: an idle agent took an assigned, not yet
    /// started task from a backlogged one under a new epoch. Kept for the histories that hold it;
    /// today's steal asks the victim to give the task back (a `release`, then an `assign`).
    case steal
    /// A retried task whose dependencies have not (again) succeeded waits for them.
    case block

    public var rule: (from: Set<TaskState>, to: TaskState) {
        switch self {
        case .unblock: ([.blocked], .queued)
        case .assign: ([.queued], .assigned)
        case .start: ([.assigned], .running)
        case .succeed: ([.running], .succeeded)
        case .fail: ([.running], .failed)
        case .retryAfterFailure: ([.running], .queued)
        case .cancel: ([.blocked, .queued, .assigned, .running], .cancelled)
        case .expireLease: ([.assigned, .running], .queued)
        case .release: ([.assigned, .running], .queued)
        case .retry: ([.failed, .cancelled], .queued)
        case .steal: ([.assigned], .assigned)
        case .block: ([.queued], .blocked)
        }
    }

    public var verb: String {
        switch self {
        case .unblock: "unblock it"
        case .assign: "assign it"
        case .start: "start it"
        case .succeed: "mark it succeeded"
        case .fail: "mark it failed"
        case .retryAfterFailure: "requeue it after a failure"
        case .cancel: "cancel it"
        case .expireLease: "expire its lease"
        case .release: "release it"
        case .retry: "retry it"
        case .steal: "steal it"
        case .block: "block it"
        }
    }
}

/// What a failed run turns into: another attempt while attempts are left.
public enum RetryPolicy {
    public static func transitionAfterFailure(attempt: Int, maxAttempts: Int) -> TaskTransition {
        attempt < maxAttempts ? .retryAfterFailure : .fail
    }
}

/// A job's state is derived from its tasks' (docs/ARCHITECTURE.md §2), never stored.
public enum JobState: String, Codable, Sendable, CaseIterable {
    case queued, running, paused, succeeded, failed, cancelled

    public static func derive(counts: [TaskState: Int], paused: Bool, cancelled: Bool) -> JobState {
        let total = counts.values.reduce(0, +)
        let active = (counts[.assigned] ?? 0) + (counts[.running] ?? 0)
        let waiting = (counts[.queued] ?? 0) + (counts[.blocked] ?? 0)
        if cancelled && active == 0 { return .cancelled }
        if active > 0 { return .running }
        if waiting > 0 { return paused ? .paused : .queued }
        if total > 0 && counts[.succeeded] == total { return .succeeded }
        if (counts[.failed] ?? 0) > 0 { return .failed }
        if (counts[.cancelled] ?? 0) > 0 { return .cancelled }
        return total == 0 ? .succeeded : .queued
    }
}

public enum AgentState: String, Codable, Sendable, CaseIterable {
    /// Heartbeating, claims work.
    case online
    /// Finishes what it runs, claims nothing new.
    case draining
    /// Silent past the lease timeout.
    case offline
    /// Put aside by an admin: claims nothing.
    case disabled

    public var mayClaim: Bool { self == .online }
}
