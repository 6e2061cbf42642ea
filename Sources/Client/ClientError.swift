import AsyncHTTPClient
import Foundation
import NIOCore
import PaddockProtocol

/// What can go wrong talking to the master.
public enum ClientError: Error, CustomStringConvertible, Sendable {
    /// The master could not be reached, the connection broke, or no answer came in time: worth retrying.
    case transport(String)
    /// The master answered with an error of its own (4xx/5xx).
    case api(PaddockError)
    /// The master answered something this client does not understand (or an answer over the size limit).
    case protocolMismatch(String)

    public var description: String {
        switch self {
        case .transport(let text): "cannot reach the master: \(text)"
        case .api(let error): error.message
        case .protocolMismatch(let text): "unexpected answer from the master: \(text)"
        }
    }

    /// Retrying may help: the master is away, restarting, or overloaded. A 502/503/504 is such a
    /// time whoever says it: a frontend with no healthy master behind it, or a master whose
    /// database does not answer (503 `unavailable`). Callers retry these with `Backoff` and keep
    /// what they have to report; only the master's own refusals (4xx) are final.
    public var isRetryable: Bool {
        switch self {
        case .transport: true
        case .api(let error): Self.isRetryable(status: error.status)
        case .protocolMismatch: false
        }
    }

    /// Whether an answer of this HTTP status is worth retrying (5xx, 429, 408).
    public static func isRetryable(status: Int) -> Bool { status >= 500 || status == 429 || status == 408 }

    /// A non-2xx answer: the master's JSON error when it sent one, else (a frontend's HTML page,
    /// an empty body) an error of that status with the start of the body as its message.
    public static func answer(status: Int, body: Data) -> ClientError {
        var error = (try? WireJSON.decoder().decode(PaddockError.self, from: body))
            ?? PaddockError(status: status, code: "http_\(status)", message: String(decoding: body.prefix(300), as: UTF8.self))
        error.status = status
        return .api(error)
    }

    /// The HTTP status of an `.api` error.
    public var status: Int? {
        if case .api(let error) = self { return error.status }
        return nil
    }
}

extension ClientError {
    /// Whatever a request threw, as a `ClientError` naming the request (`url`: where it went).
    static func from(_ error: any Error, _ method: String, _ url: String, timeout: Double) -> ClientError {
        if let error = error as? ClientError { return error }
        let what = "\(method) \(url)"
        if error is NIOTooManyBytesError {
            return .protocolMismatch("\(what): the answer is over \(MasterClient.answerLimit >> 20) MiB")
        }
        if error is DeadlineExceeded { return .transport("\(what): no answer within \(seconds(timeout))") }
        if let http = error as? HTTPClientError {
            switch http {
            case .deadlineExceeded, .readTimeout, .writeTimeout:
                return .transport("\(what): no answer within \(seconds(timeout))")
            case .connectTimeout:
                return .transport("\(what): no connection within the connect timeout")
            case .cancelled:
                return .transport("\(what): cancelled")
            default:
                return .transport("\(what): \(http)")
            }
        }
        if error is CancellationError { return .transport("\(what): cancelled") }
        if let io = error as? IOError {
            // e.g. "connection reset (error set): Connection refused (errno: 111)": the errno's text says it.
            return .transport("\(what): \(String(cString: strerror(io.errnoCode)).lowercased())")
        }
        return .transport("\(what): \(error)")
    }

    private static func seconds(_ value: Double) -> String {
        let value = MasterClient.clamp(value)
        return value == value.rounded() ? "\(Int(value)) s" : String(format: "%.1f s", value)
    }
}

/// The whole-request deadline passed (see `MasterClient.withDeadline`).
struct DeadlineExceeded: Error {}
