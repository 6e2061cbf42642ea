import Logging

/// When a process releases its clean pages (`ResidentPages.release`): the first time it asks, then
/// only once its resident set has grown by more than `slack` since its last release (new code run,
/// heap grown). A release costs a read of /proc/self/smaps and the minor faults that map back what
/// runs next, so it happens once per change of activity, not at every ask.
public struct ResidentTrim: Sendable {
    public static let slack = 1 << 20
    /// What the process is, for the log line ("idle agent", "master").
    let what: String
    let logger: Logger
    /// The resident set just after the last release.
    public private(set) var floor: Int?

    public init(_ what: String, logger: Logger) {
        self.what = what
        self.logger = logger
    }

    public mutating func releaseIfGrown() {
        guard let before = ResidentPages.residentBytes() else { return }
        if let floor, before < floor + Self.slack { return }
        let released = ResidentPages.release()
        let after = ResidentPages.residentBytes()
        floor = after
        logger.debug("\(what): released \(released.count) clean mappings; resident \(before >> 10) kB → \((after ?? 0) >> 10) kB")
    }
}
