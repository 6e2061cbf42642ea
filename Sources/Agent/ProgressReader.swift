import Dispatch
import Foundation
import PaddockProtocol
import Synchronization

/// The progress a task's output announces: `PROGRESS` lines, and lines its job's `progress_regex`
/// matches. The regex runs on a queue of the task's own, off Swift's shared pool, with a time budget
/// per line and per chunk of output (ICU backtracks: a pattern can take exponential time on one
/// line). A pattern past its budget is dropped for the rest of the task, and `feed` says so once;
/// heartbeats and exchanges never wait for it.
struct ProgressReader {
    /// Each line's budget, and each chunk's: benign patterns take microseconds on a 4 KiB line.
    static let lineBudget: Duration = .milliseconds(250)
    static let chunkBudget: Duration = .seconds(1)
    /// How long the reader waits for a chunk's evaluation at most, whatever ICU does.
    static let watchdog: Duration = .seconds(3)

    private var scanner = ProgressLine.Scanner()
    private var pattern: ProgressLine.Pattern?
    private let source: String
    private let frames: ClosedRange<Int>?
    private let queue = DispatchQueue(label: "paddock.progress-regex")

    init(progressRegex: String?, frames: ClosedRange<Int>?) {
        source = progressRegex ?? ""
        pattern = progressRegex.flatMap(ProgressLine.Pattern.init)
        self.frames = frames
    }

    /// The last progress `chunk` announces, and the warning for the task's log when the pattern was dropped.
    mutating func feed(_ chunk: some Sequence<UInt8>) async -> (progress: Double?, warning: String?) {
        let lines = scanner.lines(chunk)
        guard !lines.isEmpty else { return (nil, nil) }
        guard let pattern else { return (lines.compactMap(ProgressLine.parse).last, nil) }
        let read = await Self.evaluate(lines, pattern, frames: frames, on: queue)
        guard read.outOfTime else { return (read.progress, nil) }
        self.pattern = nil
        // The watchdog answered for an evaluation ICU did not stop: the chunk's PROGRESS lines still count.
        let progress = read.progress ?? lines.compactMap(ProgressLine.parse).last
        let warning = "paddock: progress_regex '\(source.prefix(80))' took over \(Self.lineBudget) on one line "
            + "(or \(Self.chunkBudget) on one chunk of output): it is not read for the rest of this task\n"
        return (progress, warning)
    }

    /// Runs on `queue`; should ICU fail to stop at the deadline, the reader stops waiting anyway
    /// (the queue's thread is then left to finish alone; the pool is not).
    private static func evaluate(_ lines: [String], _ pattern: ProgressLine.Pattern, frames: ClosedRange<Int>?,
                                 on queue: DispatchQueue) async -> (progress: Double?, outOfTime: Bool) {
        let answered = Once()
        return await withCheckedContinuation { continuation in
            // One timer per evaluation, cancelled once it has answered: chunks come by the thousand.
            let watchdogTimer = Task {
                try? await Task.sleep(for: watchdog)
                if !Task.isCancelled, answered.first() { continuation.resume(returning: (nil, true)) }
            }
            let answer: @Sendable ((progress: Double?, outOfTime: Bool)) -> Void = { result in
                watchdogTimer.cancel()
                if answered.first() { continuation.resume(returning: result) }
            }
            queue.async {
                let chunkDeadline = ContinuousClock.now + chunkBudget
                var found: Double?
                var outOfTime = false
                for line in lines {
                    if let value = ProgressLine.parse(line) {
                        found = value
                        continue
                    }
                    // Past the budget the pattern is not run again, but the chunk's PROGRESS lines still count.
                    guard !outOfTime else { continue }
                    switch pattern.evaluate(line, frames: frames, until: min(ContinuousClock.now + lineBudget, chunkDeadline)) {
                    case .progress(let value): found = value
                    case .nothing: break
                    case .outOfTime: outOfTime = true
                    }
                }
                answer((found, outOfTime))
            }
        }
    }
}

/// True the first time it is asked, false after: one answer to a continuation that two may give.
private final class Once: Sendable {
    private let done = Mutex(false)

    func first() -> Bool {
        done.withLock { done in
            defer { done = true }
            return !done
        }
    }
}
