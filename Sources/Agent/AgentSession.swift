import Foundation
import Logging
import PaddockClient
import PaddockProtocol

/// The agent's standing with the master: its id and a link carrying its own
/// credential, once enrolled. Services that need it wait for it.
actor AgentSession {
    struct Enrolled: Sendable {
        var id: AgentID
        var master: any MasterLink
    }

    let config: AgentConfig
    /// The master, with the join token.
    let master: any MasterLink
    let clock: any AgentClock
    let logger: Logger
    private var enrolled: Enrolled?
    private var waiters: [CheckedContinuation<Enrolled, Never>] = []
    private var cancellableWaiters: [UUID: CheckedContinuation<Enrolled, any Error>] = [:]
    var heartbeatInterval: Double = 5

    init(config: AgentConfig, master: any MasterLink, clock: any AgentClock, logger: Logger) {
        self.config = config
        self.master = master
        self.clock = clock
        self.logger = logger
    }

    /// The session, for the exchange loop once `enroll()` has returned (it never waits then).
    func ready() async -> Enrolled {
        if let enrolled { return enrolled }
        return await withCheckedContinuation { waiters.append($0) }
    }

    /// The session, waiting for the enrollment; a service that stops (SIGTERM while the master is
    /// unreachable) is not held here: cancellation ends the wait with `CancellationError`.
    func enrolledSession() async throws -> Enrolled {
        if let enrolled { return enrolled }
        let id = UUID()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                } else {
                    cancellableWaiters[id] = continuation
                }
            }
        } onCancel: {
            Task { await self.cancelWaiter(id) }
        }
    }

    private func cancelWaiter(_ id: UUID) {
        cancellableWaiters.removeValue(forKey: id)?.resume(throwing: CancellationError())
    }

    /// Uses the saved credential when there is one for this master, else enrolls with the join token.
    /// Retries with back-off until it works or the task is cancelled. The saved credential under
    /// this name, if any, goes with the enrollment: the master lets only the agent that holds it
    /// (or one an admin reset) enroll under a name already enrolled. Refused so (409), the agent
    /// says why and tries again every 30 s or so, until an admin resets the name.
    func enroll(forget: Bool = false) async throws {
        let masterURL = config.masterURL.absoluteString
        let saved = EnrollmentFile.load(workDir: config.workDir).flatMap { $0.name == config.name ? $0 : nil }
        if !forget, let saved, saved.master == masterURL {
            set(Enrolled(id: saved.id, master: master.with(token: saved.credential)))
            logger.info("agent \(config.name) resumes as \(saved.id)")
            return
        }
        let request = EnrollRequest(name: config.name, resources: config.resources, tags: config.tags,
                                    version: PaddockVersion.current, credential: saved?.credential)
        var backoff = Backoff()
        var refusals = Backoff(base: 2, cap: 30)
        while true {
            try Task.checkCancellation()
            do {
                let reply = try await master.enroll(request)
                try EnrollmentFile(master: masterURL, name: config.name, id: reply.id, credential: reply.credential)
                    .save(workDir: config.workDir)
                heartbeatInterval = reply.heartbeatInterval
                set(Enrolled(id: reply.id, master: master.with(token: reply.credential)))
                logger.info("agent \(config.name) enrolled as \(reply.id)")
                return
            } catch let error as ClientError where error.isRetryable {
                logger.warning("enrolling: \(error); retrying")
                try await backoff.sleep(on: clock)
            } catch let error as ClientError where error.status == 409 {
                // The name is held (or was deleted): an admin decides; until then, ask again now and then.
                logger.error("enrolling refused: \(error)")
                try await refusals.sleep(on: clock)
            } catch {
                logger.error("enrolling refused: \(error)")
                throw error
            }
        }
    }

    private func set(_ value: Enrolled) {
        enrolled = value
        let waiting = waiters
        waiters.removeAll()
        waiting.forEach { $0.resume(returning: value) }
        let cancellable = cancellableWaiters.values
        cancellableWaiters.removeAll()
        cancellable.forEach { $0.resume(returning: value) }
    }
}
