import Hummingbird
import PaddockProtocol

/// Text never holds NUL: PostgreSQL's text type cannot store it (SQLite could, but the two stores
/// must accept the same input), and no name, tag, label or message needs it. A NUL in a JSON
/// string (`\u0000`) or in a query parameter is refused with a 400 before any store sees it.
public enum NULGuard {
    /// True when a JSON document has a `\u0000` escape in a string (not a `\\u0000`, which is a
    /// backslash followed by text). Raw control bytes are not valid JSON: the decoder refuses those.
    public static func jsonHasNUL(_ bytes: some Sequence<UInt8>) -> Bool {
        var escaped = false
        var window: [UInt8] = []  // the bytes after a `\u`, while reading its 4 hex digits
        var inUnicode = false
        for byte in bytes {
            if inUnicode {
                window.append(byte)
                if window.count == 4 {
                    if window.allSatisfy({ $0 == UInt8(ascii: "0") }) { return true }
                    inUnicode = false
                    window.removeAll(keepingCapacity: true)
                }
            } else if escaped {
                escaped = false
                inUnicode = byte == UInt8(ascii: "u")
            } else if byte == UInt8(ascii: "\\") {
                escaped = true
            }
        }
        return false
    }
}

/// Refuses query parameters holding NUL (`%00`), see `NULGuard`.
struct NULQueryMiddleware: RouterMiddleware {
    typealias Context = MasterContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        for (name, value) in request.uri.queryParameters where name.contains("\0") || value.contains("\0") {
            throw PaddockError.invalid("query parameters must not contain NUL", field: String(name.filter { $0 != "\0" }))
        }
        return try await next(request, context)
    }
}
