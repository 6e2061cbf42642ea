import Foundation
import Logging
import PaddockProtocol
import ServiceLifecycle

/// Deletes the logs of tasks that ended more than `retention` seconds ago (`--log-retention`), and
/// those of the tasks that ended first in a job whose logs pass `bytesPerJob`
/// (`--log-retention-bytes`), a batch at a time. Safe on every master at once: a log deleted twice
/// is deleted.
struct LogPruner: Service {
    let store: SQLStore
    let retention: Double?
    let bytesPerJob: Int64?
    let logger: Logger

    /// A quarter of the retention, between 1 s and 5 min (a log outlives its retention by that much
    /// at most); 10 s when only sizes are bounded (a job passes its bound by what it logs meanwhile).
    var period: Duration { .milliseconds(Int(max(1, min(300, retention.map { $0 / 4 } ?? 10)) * 1000)) }

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                var pruned = 0
                while let retention {
                    let batch = try await store.pruneLogs(finishedBefore: store.clock.now().addingTimeInterval(-retention))
                    pruned += batch
                    if batch < 500 || Task.isCancelled { break }
                }
                if pruned > 0 { logger.info("log retention: deleted the logs of \(pruned) task(s)") }
                if let bytesPerJob {
                    let trimmed = try await store.pruneLogs(overBytesPerJob: bytesPerJob)
                    if trimmed > 0 {
                        logger.info("log retention: deleted the logs of \(trimmed) task(s) of jobs past \(ByteSize.format(bytesPerJob))")
                    }
                }
            } catch where StoreFailure.isUnavailable(error) {
                // The lease sweeper says so already.
            } catch {
                logger.error("log retention failed: \(error)")
            }
            try? await Task.sleep(for: period)
        }
    }
}
