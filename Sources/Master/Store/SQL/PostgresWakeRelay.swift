import Foundation
import Logging
import PostgresNIO

/// Wake-ups across masters through PostgreSQL's LISTEN/NOTIFY: a submission on
/// one master wakes claim long-polls held by another, a talkback command posted
/// on one reaches an agent long-polling on another at once. Like every wake-up
/// it is only a hint (the woken side reads the store again), so a notification
/// lost while a connection is down costs latency, never correctness; after a
/// reconnect every channel is woken once to cover what was missed.
final class PostgresWakeRelay: WakeRelay {
    static let channel = "paddock_wake"
    let location: PostgresLocation
    let connections: PostgresConnections
    let logger: Logger
    let outbox = WakeOutbox()

    init(location: PostgresLocation, connections: PostgresConnections, logger: Logger) {
        self.location = location
        self.connections = connections
        self.logger = logger
    }

    func publish(_ channel: WakeChannel) {
        Task { await outbox.send(channel, using: self) }
    }

    /// One `NOTIFY` on a pooled connection; a failure is only logged (see the type's comment).
    func notify(_ channel: WakeChannel) async {
        do {
            let connection = try await connections.acquire()
            do {
                _ = try await connection.query("SELECT pg_notify(\(Self.channel), \(channel.rawValue))", logger: logger)
                await connections.release(connection)
            } catch {
                await connections.release(connection, broken: true)
                throw error
            }
        } catch {
            logger.debug("wake-up \(channel.rawValue) not sent to other masters: \(error)")
        }
    }

    func listen(_ deliver: @escaping @Sendable (WakeChannel) async -> Void) async throws {
        var backoff = Duration.milliseconds(100)
        var id = 1_000_000
        while !Task.isCancelled {
            id += 1
            do {
                let connection = try await PostgresConnections.connect(location, id: id, logger: logger)
                defer { connection.close().whenComplete { _ in withExtendedLifetime(connection) {} } }
                try await connection.listen(on: Self.channel) { notifications in
                    backoff = .milliseconds(100)
                    for channel in WakeChannel.allCases { await deliver(channel) }
                    for try await notification in notifications {
                        if let channel = WakeChannel(rawValue: notification.payload) { await deliver(channel) }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("listening for other masters' wake-ups: \(PGTransaction.describe(error)); retrying")
            }
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(2))
        }
    }
}

/// Coalesces wake-ups: while one NOTIFY of a channel is on its way, further ones
/// collapse into a single follow-up (a burst of finishes costs two round trips, not one each).
actor WakeOutbox {
    private var sending: Set<WakeChannel> = []
    private var again: Set<WakeChannel> = []

    func send(_ channel: WakeChannel, using relay: PostgresWakeRelay) async {
        guard !sending.contains(channel) else {
            again.insert(channel)
            return
        }
        sending.insert(channel)
        repeat {
            again.remove(channel)
            await relay.notify(channel)
        } while again.contains(channel)
        sending.remove(channel)
    }
}
