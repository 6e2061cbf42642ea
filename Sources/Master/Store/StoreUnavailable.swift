import Foundation
import GRDB
import PaddockProtocol
import Synchronization

/// Marks the errors a store throws when its database cannot be reached (down, hung, locked past its
/// timeout, out of disk). The master answers them with 503 and `Retry-After` instead of a 500: the
/// request was fine, the condition passes, and clients (agents above all) retry it as they would
/// an unreachable master. A store wraps its driver's connection errors in one of these.
public protocol StoreUnavailable: Error {}

/// The database did not answer in time (e.g. `/healthz`'s ping against a hung database).
public struct StoreTimeout: StoreUnavailable, CustomStringConvertible {
    public var operation: String
    public var limit: Duration
    public init(operation: String, limit: Duration) {
        self.operation = operation
        self.limit = limit
    }
    public var description: String { "\(operation) got no answer from the database within \(limit)" }
}

enum StoreFailure {
    /// True for errors that mean "the database cannot serve now" rather than "this request is wrong"
    /// or "the master has a bug". Besides `StoreUnavailable`, SQLite's own codes for a database that
    /// is locked past the busy timeout, cannot be opened, fails its I/O or is full: the SQLite store
    /// lets GRDB's errors through as they are.
    static func isUnavailable(_ error: any Error) -> Bool {
        if error is any StoreUnavailable { return true }
        if let error = error as? DatabaseError {
            return [.SQLITE_BUSY, .SQLITE_LOCKED, .SQLITE_IOERR, .SQLITE_CANTOPEN, .SQLITE_FULL, .SQLITE_PROTOCOL]
                .contains(error.resultCode)
        }
        return false
    }
}

/// Runs `operation` but gives up after `limit` with `StoreTimeout`. Unlike a task group, it does not
/// wait for the operation to end: a hung database call may ignore cancellation, and the caller (a
/// health check) must answer anyway. The abandoned call is cancelled and ends whenever the driver lets it.
func withStoreDeadline<T: Sendable>(_ limit: Duration, operation name: String,
                                    _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    let race = Race<T>()
    return try await withCheckedThrowingContinuation { continuation in
        race.arm(continuation)
        let work = Task {
            let result: Result<T, any Error>
            do { result = .success(try await operation()) } catch { result = .failure(error) }
            race.finish(result)
        }
        race.setTimer(Task {
            guard (try? await Task.sleep(for: limit)) != nil else { return }
            race.finish(.failure(StoreTimeout(operation: name, limit: limit)))
            work.cancel()
        })
    }
}

/// A continuation resumed by whichever side comes first (later results are dropped), and the
/// timer to stop when the work wins.
private final class Race<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var timer: Task<Void, Never>?
        var done = false
    }
    private let state = Mutex(State())

    func arm(_ continuation: CheckedContinuation<T, any Error>) { state.withLock { $0.continuation = continuation } }

    func setTimer(_ timer: Task<Void, Never>) {
        let late = state.withLock { state -> Bool in
            if state.done { return true }
            state.timer = timer
            return false
        }
        if late { timer.cancel() }
    }

    func finish(_ result: Result<T, any Error>) {
        let timer = state.withLock { state -> Task<Void, Never>? in
            guard !state.done else { return nil }
            state.done = true
            state.continuation?.resume(with: result)
            state.continuation = nil
            defer { state.timer = nil }
            return state.timer
        }
        timer?.cancel()
    }
}
