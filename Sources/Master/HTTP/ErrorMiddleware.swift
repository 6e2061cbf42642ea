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
        } catch let error as HTTPError where error.status == .notFound && !Self.methods(serving: request.uri.path).isEmpty {
            // The path is the API's, the method is not one it is served with: 405 and what is (RFC 9110 §15.5.6).
            let allowed = Self.methods(serving: request.uri.path)
            var response = Self.response(PaddockError(
                status: 405, code: "method_not_allowed",
                message: "\(request.method.rawValue.prefix(16)) is not served on \(request.uri.path.prefix(200)): \(allowed.joined(separator: ", ")) is"))
            response.headers[.allow] = allowed.joined(separator: ", ")
            return response
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

    /// The methods the API serves `path` with (its routes' templates, `{id}` matching one segment; a route
    /// written out, such as `/v1/agents/reset`, before the templates it also fits); none for a path that is no route's.
    static func methods(serving path: String) -> [String] {
        let exact = APIRoute.allCases.filter { $0.path == path }.map(\.method.rawValue)
        if !exact.isEmpty { return Array(Set(exact)).sorted() }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        let methods = APIRoute.allCases.filter { route in
            let template = route.path.split(separator: "/", omittingEmptySubsequences: false)
            return template.count == segments.count && zip(template, segments).allSatisfy { part, segment in
                part.hasPrefix("{") && part.hasSuffix("}") ? !segment.isEmpty : part == segment
            }
        }.map(\.method.rawValue)
        return Array(Set(methods)).sorted()
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
