import Foundation
import Logging
import ServiceLifecycle

/// Deletes the logs of tasks that ended more than `retention` seconds ago (`--log-retention`), a
/// batch at a time. Safe on every master at once: a log deleted twice is deleted.
struct LogPruner: Service {
    let store: SQLStore
    let retention: Double
    let logger: Logger

    /// A quarter of the retention, between 1 s and 5 min: a log outlives its retention by that much at most.
    var period: Duration { .milliseconds(Int(max(1, min(300, retention / 4)) * 1000)) }

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                var pruned = 0
                while true {
                    let batch = try await store.pruneLogs(finishedBefore: store.clock.now().addingTimeInterval(-retention))
                    pruned += batch
                    if batch < 500 || Task.isCancelled { break }
                }
                if pruned > 0 { logger.info("log retention: deleted the logs of \(pruned) task(s)") }
            } catch where StoreFailure.isUnavailable(error) {
                // The lease sweeper says so already.
            } catch {
                logger.error("log retention failed: \(error)")
            }
            try? await Task.sleep(for: period)
        }
    }
}
