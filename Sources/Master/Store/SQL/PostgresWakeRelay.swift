import Foundation
import Logging
import PaddockProtocol
import PostgresNIO

/// Wake-ups across masters through PostgreSQL's LISTEN/NOTIFY: a submission on
/// one master wakes claim long-polls held by another, a talkback command posted
/// on one reaches an agent long-polling on another at once. A claims wake-up
/// carries its `NewWork` (`WakePayload`), so the other masters wake only the held
/// claims it fits too. Like every wake-up it is only a hint (the woken side reads
/// the store again), so a notification lost while a connection is down costs
/// latency, never correctness; after a reconnect every channel is woken once to
/// cover what was missed.
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

    func publish(_ channel: WakeChannel, work: NewWork) {
        Task { await outbox.send(channel, work, using: self) }
    }

    /// One `NOTIFY` on a pooled connection; a failure is only logged (see the type's comment).
    func notify(_ channel: WakeChannel, _ work: NewWork) async {
        let payload = WakePayload.encode(channel, work)
        do {
            let connection = try await connections.acquire()
            do {
                _ = try await connection.query("SELECT pg_notify(\(Self.channel), \(payload))", logger: logger)
                await connections.release(connection)
            } catch {
                await connections.release(connection, broken: true)
                throw error
            }
        } catch {
            logger.debug("wake-up \(channel.rawValue) not sent to other masters: \(error)")
        }
    }

    func listen(_ deliver: @escaping @Sendable (WakeChannel, NewWork) async -> Void) async throws {
        var backoff = Duration.milliseconds(100)
        var id = 1_000_000
        while !Task.isCancelled {
            id += 1
            do {
                let connection = try await PostgresConnections.connect(location, id: id, logger: logger)
                defer { connection.close().whenComplete { _ in withExtendedLifetime(connection) {} } }
                try await connection.listen(on: Self.channel) { notifications in
                    backoff = .milliseconds(100)
                    for channel in WakeChannel.allCases { await deliver(channel, .anything) }
                    for try await notification in notifications {
                        if let (channel, work) = WakePayload.decode(notification.payload) { await deliver(channel, work) }
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
/// collapse into a single follow-up carrying all their work (a burst of submissions costs two
/// round trips, not one each).
actor WakeOutbox {
    private var sending: Set<WakeChannel> = []
    private var pending: [WakeChannel: NewWork] = [:]

    func send(_ channel: WakeChannel, _ work: NewWork, using relay: PostgresWakeRelay) async {
        pending[channel, default: NewWork()].formUnion(work)
        guard sending.insert(channel).inserted else { return }
        while let work = pending.removeValue(forKey: channel) {
            await relay.notify(channel, work)
        }
        sending.remove(channel)
    }
}

/// A wake-up as a NOTIFY payload: the channel's name, then for directed work a space and the
/// work as JSON. `anything` is the bare name, as masters before directed wake-ups sent it (such a
/// master ignores a payload with work: its held claims then wait out their `wait` during an
/// upgrade). PostgreSQL caps a payload below 8 000 bytes: past `limit` the shapes are left out.
enum WakePayload {
    static let limit = 7_000

    private struct Wire: Codable {
        var count: Int
        var shapes: [WireShape]?
    }

    private struct WireShape: Codable {
        var job: JobID
        var requirements: TaskRequirements
    }

    static func encode(_ channel: WakeChannel, _ work: NewWork) -> String {
        guard !work.isAnything else { return channel.rawValue }
        func text(_ wire: Wire) -> String? {
            (try? WireJSON.encoder().encode(wire)).map { channel.rawValue + " " + String(decoding: $0, as: UTF8.self) }
        }
        let shapes = work.shapes.map { $0.map { WireShape(job: $0.job, requirements: $0.requirements) } }
        if let full = text(Wire(count: work.count, shapes: shapes)), full.utf8.count <= limit { return full }
        return text(Wire(count: work.count, shapes: nil)) ?? channel.rawValue
    }

    /// The channel and its work; `anything` when the work is missing or unreadable. Nil for a channel
    /// this master does not know.
    static func decode(_ payload: String) -> (WakeChannel, NewWork)? {
        let parts = payload.split(separator: " ", maxSplits: 1)
        guard let name = parts.first, let channel = WakeChannel(rawValue: String(name)) else { return nil }
        guard parts.count == 2, let wire = try? WireJSON.decoder().decode(Wire.self, from: Data(parts[1].utf8)),
              wire.count > 0 else { return (channel, .anything) }
        guard let shapes = wire.shapes else { return (channel, .unshaped(wire.count)) }
        return (channel, NewWork(shapes.map { ($0.requirements, $0.job) }, count: wire.count))
    }
}
