import Foundation

/// How long a cancelled or timed-out task gets between SIGTERM and SIGKILL, when its own environment
/// says (`PADDOCK_STOP_GRACE`, whole seconds, 0 to 600): an OpenJD action's `cancelation` sets it
/// (`TERMINATE` 0, `NOTIFY_THEN_TERMINATE` its `notifyPeriodInSeconds`), and a Paddock task may set it
/// in its `env`. Without it (or with a value out of bounds) the agent's own grace applies.
public enum StopGrace {
    public static let variable = "PADDOCK_STOP_GRACE"
    public static let maxSeconds = 600

    /// The grace a task's environment asks for, if it asks for one within bounds.
    public static func requested(by env: [String: String]) -> Duration? {
        guard let text = env[variable], let seconds = Int(text), (0...maxSeconds).contains(seconds) else { return nil }
        return .seconds(seconds)
    }
}
