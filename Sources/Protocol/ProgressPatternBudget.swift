import Foundation

extension ProgressLine.Pattern {
    /// What one line gave under a time budget.
    public enum Evaluation: Sendable, Equatable {
        case progress(Double)
        case nothing
        /// The match was still running at the deadline (ICU's backtracking can take exponential
        /// time: `^(a+)+$` against a long line of a's and one b) and was stopped there.
        case outOfTime
    }

    /// As `progress(of:frames:)`, stopped at `deadline`: ICU calls back every few thousand steps
    /// of its matcher (`reportProgress`), and the match ends there once the deadline has passed.
    public func evaluate(_ line: String, frames: ClosedRange<Int>?, until deadline: ContinuousClock.Instant) -> Evaluation {
        var found: NSTextCheckingResult?
        var outOfTime = false
        regex.enumerateMatches(in: line, options: [.reportProgress], range: NSRange(line.startIndex..., in: line)) { match, _, stop in
            if let match {
                found = match
                stop.pointee = true
            } else if ContinuousClock.now >= deadline {
                outOfTime = true
                stop.pointee = true
            }
        }
        if outOfTime { return .outOfTime }
        return found.flatMap { fraction(of: $0, in: line, frames: frames) }.map(Evaluation.progress) ?? .nothing
    }
}
