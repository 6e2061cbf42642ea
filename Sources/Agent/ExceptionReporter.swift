import Foundation
import Logging
import PaddockClient
import PaddockProtocol

/// Tells the master about errors the agent could not handle, and keeps going: a task that
/// could not be launched, a refused upload, a loop that failed in an unexpected way.
struct ExceptionReporter: Sendable {
    let session: AgentSession.Enrolled
    let clock: any AgentClock
    let logger: Logger

    func report(_ type: String, _ message: String, task: TaskID? = nil, context: [String: String] = [:]) {
        let report = ExceptionReport(type: type, message: String(message.prefix(8 * 1024)), context: context, task: task,
                                     at: Date())
        Task { [session, clock, logger] in
            var backoff = Backoff(base: 0.5, cap: 5)
            for _ in 0..<5 {
                do throws(ClientError) {
                    try await session.master.report(report, agent: session.id)
                    return
                } catch where error.isRetryable {
                    try? await backoff.sleep(on: clock)
                } catch {
                    logger.warning("reporting an exception failed: \(error)")
                    return
                }
            }
        }
    }
}
