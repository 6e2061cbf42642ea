import Foundation
import Hummingbird
import Logging
import NIOCore
import PaddockProtocol

/// Turns every error into the JSON shape `{error, message, field?}`. A database that cannot be
/// reached is no bug: it answers 503 `unavailable` with `Retry-After`, which clients wait out.
/// Other errors that are not the API's own are counted and logged: they are bugs, and the caller
/// gets a 500 that says so without leaking internals.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = MasterContext
    let stats: MasterStats

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as PaddockError {
            return Self.response(error)
        } catch let error as HTTPError {
            let code: String
            switch error.status.code {
            case 404: code = "not_found"
            case 405: code = "method_not_allowed"
            case 413: code = "too_large"
            case 400: code = "invalid_request"
            default: code = "http_\(error.status.code)"
            }
            let message = error.status.code == 404
                ? "no route \(request.method.rawValue) \(request.uri.path)"
                : (error.body ?? error.status.reasonPhrase)
            return Self.response(PaddockError(status: error.status.code, code: code, message: message))
        } catch let error as DecodingError {
            return Self.response(WireJSON.describe(error))
        } catch where StoreFailure.isUnavailable(error) {
            context.logger.warning(
                "database unavailable on \(request.method.rawValue) \(request.uri.path) from \(context.clientName): \(error)")
            return Self.response(PaddockError.storeUnavailable)
        } catch {
            stats.recordUnhandled()
            context.logger.error(
                "unhandled error on \(request.method.rawValue) \(request.uri.path) from \(context.clientName): \(error)")
            return Self.response(PaddockError(status: 500, code: "internal", message: "internal error; see the master's log"))
        }
    }

    static func response(_ error: PaddockError) -> Response {
        let body = (try? WireJSON.encoder().encode(error)) ?? Data(#"{"error":"internal","message":"?"}"#.utf8)
        var headers: HTTPFields = [.contentType: "application/json"]
        // A 503 is a passing condition: say when to come back (a frontend or client may honour it).
        if error.status == 503 { headers[.retryAfter] = "1" }
        return Response(status: .init(code: error.status), headers: headers,
                        body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
