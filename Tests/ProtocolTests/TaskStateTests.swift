import PaddockProtocol
import Testing

/// The documented table (docs/ARCHITECTURE.md §2), written out independently of `TaskTransition.rule`.
let documentedMoves: [TaskTransition: (from: [TaskState], to: TaskState)] = [
    .unblock: ([.blocked], .queued),
    .assign: ([.queued], .assigned),
    .start: ([.assigned], .running),
    .succeed: ([.running], .succeeded),
    .fail: ([.running], .failed),
    .retryAfterFailure: ([.running], .queued),
    .cancel: ([.blocked, .queued, .assigned, .running], .cancelled),
    .expireLease: ([.assigned, .running], .queued),
    .release: ([.assigned, .running], .queued),
    .retry: ([.failed, .cancelled], .queued),
    .steal: ([.assigned], .assigned),
    .block: ([.queued], .blocked),
]

@Suite("Task state machine")
struct TaskStateTests {
    @Test func theTableCoversEveryTransition() {
        #expect(Set(documentedMoves.keys) == Set(TaskTransition.allCases))
        #expect(TaskState.allCases.count == 7)
        #expect(TaskTransition.allCases.count == 12)
    }

    /// All 7 × 12 (state, transition) pairs: the legal ones land where documented, every other one throws.
    @Test(arguments: TaskState.allCases, TaskTransition.allCases)
    func everyPair(state: TaskState, transition: TaskTransition) throws {
        let documented = try #require(documentedMoves[transition])
        if documented.from.contains(state) {
            #expect(try state.applying(transition) == documented.to)
        } else {
            do throws(IllegalTransition) {
                let reached = try state.applying(transition)
                Issue.record("\(state) --\(transition)--> \(reached) should be illegal")
            } catch {
                #expect(error.from == state)
                #expect(error.transition == transition)
            }
        }
    }

    @Test(arguments: TaskTransition.allCases)
    func ruleMatchesTheDocumentedTable(_ transition: TaskTransition) throws {
        let documented = try #require(documentedMoves[transition])
        #expect(transition.rule.from == Set(documented.from))
        #expect(transition.rule.to == documented.to)
        #expect(!transition.verb.isEmpty)
    }

    @Test func terminalStatesOnlyLeaveThroughRetry() {
        for state in TaskState.allCases where state.isTerminal {
            let ways = TaskTransition.allCases.filter { (try? state.applying($0)) != nil }
            #expect(ways == (state == .succeeded ? [] : [.retry]), "\(state)")
        }
    }

    @Test func stateFlags() {
        #expect(TaskState.allCases.filter(\.isTerminal) == [.succeeded, .failed, .cancelled])
        #expect(TaskState.allCases.filter(\.isLeased) == [.assigned, .running])
        #expect(AgentState.allCases.filter(\.mayClaim) == [.online])
    }

    @Test func wireNames() {
        #expect(TaskState.allCases.map(\.rawValue)
            == ["blocked", "queued", "assigned", "running", "succeeded", "failed", "cancelled"])
        #expect(TaskTransition.retryAfterFailure.rawValue == "retry_after_failure")
        #expect(TaskTransition.expireLease.rawValue == "expire_lease")
        #expect(JobState.allCases.map(\.rawValue) == ["queued", "running", "paused", "succeeded", "failed", "cancelled"])
        #expect(AgentState.allCases.map(\.rawValue) == ["online", "draining", "offline", "disabled"])
    }

    @Test func aFullLife() throws {
        var state = TaskState.blocked
        for step in [TaskTransition.unblock, .assign, .start, .retryAfterFailure, .assign, .expireLease,
                     .assign, .start, .fail, .retry, .assign, .start, .succeed] {
            state = try state.applying(step)
        }
        #expect(state == .succeeded)
    }
}

@Suite("RetryPolicy")
struct RetryPolicyTests {
    @Test(arguments: [
        (1, 3, TaskTransition.retryAfterFailure),
        (2, 3, .retryAfterFailure),
        (3, 3, .fail),
        (4, 3, .fail),
        (1, 1, .fail),
        (0, 1, .retryAfterFailure),
        (99, 100, .retryAfterFailure),
        (100, 100, .fail),
    ])
    func afterFailure(attempt: Int, maxAttempts: Int, expected: TaskTransition) throws {
        let transition = RetryPolicy.transitionAfterFailure(attempt: attempt, maxAttempts: maxAttempts)
        #expect(transition == expected)
        // Whatever it decides is a legal move for a running task.
        #expect(try TaskState.running.applying(transition) == (expected == .fail ? .failed : .queued))
    }

    @Test func theDefaultAllowsThreeRuns() {
        let max = JobSubmission.defaultMaxAttempts
        #expect(max == 3)
        let decisions = (1...max).map { RetryPolicy.transitionAfterFailure(attempt: $0, maxAttempts: max) }
        #expect(decisions == [.retryAfterFailure, .retryAfterFailure, .fail])
    }
}

@Suite("JobState.derive")
struct JobStateTests {
    func derive(_ counts: [TaskState: Int], paused: Bool = false, cancelled: Bool = false) -> JobState {
        JobState.derive(counts: counts, paused: paused, cancelled: cancelled)
    }

    @Test func fromTaskCounts() {
        #expect(derive([.queued: 3]) == .queued)
        #expect(derive([.blocked: 1]) == .queued)
        #expect(derive([.queued: 2, .succeeded: 1]) == .queued)
        #expect(derive([.queued: 2, .running: 1]) == .running)
        #expect(derive([.assigned: 1, .failed: 1]) == .running)
        #expect(derive([.succeeded: 4]) == .succeeded)
        #expect(derive([.succeeded: 4, .queued: 0, .running: 0]) == .succeeded)
        #expect(derive([.succeeded: 3, .failed: 1]) == .failed)
        #expect(derive([.succeeded: 3, .failed: 1, .cancelled: 1]) == .failed)
        #expect(derive([.succeeded: 3, .cancelled: 1]) == .cancelled)
        #expect(derive([:]) == .succeeded)
    }

    @Test func pausedHoldsWaitingWorkButNotRunningWork() {
        #expect(derive([.queued: 2], paused: true) == .paused)
        #expect(derive([.queued: 2, .running: 1], paused: true) == .running)
        #expect(derive([.succeeded: 2], paused: true) == .succeeded)
    }

    @Test func cancelledOnceNothingRuns() {
        #expect(derive([.queued: 2], cancelled: true) == .cancelled)
        #expect(derive([.running: 1, .cancelled: 2], cancelled: true) == .running)
        #expect(derive([.cancelled: 3], cancelled: true) == .cancelled)
    }

    @Test func taskCounts() throws {
        let counts = TaskCounts([.queued: 2, .running: 1])
        #expect(counts.total == 3)
        #expect(counts[.queued] == 2)
        #expect(counts[.failed] == 0)
        let object = try Wire.object(counts)
        #expect(Set(object.keys) == Set(TaskState.allCases.map(\.rawValue)))
        #expect(object["failed"] as? Int == 0)
        // Unknown states from a newer master are ignored, not fatal.
        let decoded = try Wire.decode(TaskCounts.self, #"{"queued": 2, "running": 1, "paused_forever": 9}"#)
        #expect(decoded == counts)
        #expect(TaskCounts([.queued: 1]) == TaskCounts([.queued: 1, .failed: 0]))
        #expect(TaskCounts([.queued: 1]) != TaskCounts([.queued: 2]))
        #expect(TaskCounts([:]) != TaskCounts([.failed: 1]))
    }
}
