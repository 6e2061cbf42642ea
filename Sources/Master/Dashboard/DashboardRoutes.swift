import Hummingbird
import NIOCore
import PaddockProtocol

/// The web dashboard (issue 17): a few static files embedded in the binary, served at `/` and
/// under `/ui/`. Every URL the page uses is relative (`ui/app.js`, `v1/jobs`), so that it works the
/// same when a frontend serves the master under a path prefix. They hold no secret, so they need no token: the page asks for one and sends it
/// (`Authorization: Bearer`) on its calls to the public API, like any other client.
///
/// Caching: every file has a strong ETag (a hash of its bytes, computed once) and answers
/// `If-None-Match` with 304. The page is `no-cache` (revalidated each time, cheap with its ETag);
/// it names its script and style sheet with `?v=HASH`, and a request carrying the current hash is
/// cacheable for a year (`immutable`): a new build changes the hash, hence the URL.
enum Dashboard {
    struct Asset: Sendable {
        let body: ByteBuffer
        let contentType: String
        /// `"` + 16 hex digits + `"`: strong.
        let etag: String
        /// The hash alone, for `?v=`.
        let version: String

        init(_ bytes: [UInt8], contentType: String) {
            body = ByteBuffer(bytes: bytes)
            self.contentType = contentType
            version = Dashboard.hash(bytes)
            etag = "\"\(version)\""
        }
    }

    /// The files by path. Built once, on first use (a few tens of kilobytes: well under a millisecond).
    static let assets: [String: Asset] = {
        let script = Asset(PackageResources.app_js, contentType: "text/javascript; charset=utf-8")
        let style = Asset(PackageResources.app_css, contentType: "text/css; charset=utf-8")
        let icon = Asset(PackageResources.icon_svg, contentType: "image/svg+xml")
        let page = String(decoding: PackageResources.index_html, as: UTF8.self)
            .replacingOccurrences(of: "{{app.js}}", with: "ui/app.js?v=\(script.version)")
            .replacingOccurrences(of: "{{app.css}}", with: "ui/app.css?v=\(style.version)")
            .replacingOccurrences(of: "{{icon.svg}}", with: "ui/icon.svg?v=\(icon.version)")
            .replacingOccurrences(of: "{{version}}", with: PaddockVersion.current)
        let index = Asset(Array(page.utf8), contentType: "text/html; charset=utf-8")
        return ["/": index, "/index.html": index, "/ui/app.js": script, "/ui/app.css": style, "/ui/icon.svg": icon]
    }()

    /// FNV-1a, 64 bits: not a secret, only a fingerprint of the file for ETags and URLs.
    static func hash(_ bytes: [UInt8]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            h ^= UInt64(byte)
            h = h &* 0x0000_0100_0000_01b3
        }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// What a browser may do with the page: load its own script, style and icon, call its own
    /// origin; nothing inline, no frames around it.
    static let securityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        + "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

    /// The answer for `path`, or nil when it is no dashboard file.
    static func response(path: String, versionQuery: String?, ifNoneMatch: String?, head: Bool) -> Response? {
        guard let asset = assets[path] else { return nil }
        var headers: HTTPFields = [
            .eTag: asset.etag,
            .cacheControl: versionQuery == asset.version ? "public, max-age=31536000, immutable" : "no-cache",
            .contentType: asset.contentType,
            .contentTypeOptions: "nosniff",
        ]
        if asset.contentType.hasPrefix("text/html") {
            headers[.contentSecurityPolicy] = securityPolicy
            headers[.referrerPolicy] = "no-referrer"
        }
        if let ifNoneMatch, matches(ifNoneMatch, asset.etag) {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentLength] = String(asset.body.readableBytes)
        return Response(status: .ok, headers: headers, body: head ? .init() : .init(byteBuffer: asset.body))
    }

    /// `If-None-Match`: `*`, or a list of ETags (a weak `W/` one matches too: RFC 9110 compares them weakly).
    static func matches(_ header: String, _ etag: String) -> Bool {
        header.split(separator: ",").contains { candidate in
            var tag = candidate.trimmingCharacters(in: .whitespaces)
            if tag == "*" { return true }
            if tag.hasPrefix("W/") { tag.removeFirst(2) }
            return tag == etag
        }
    }
}

/// Serves the dashboard's files ahead of authentication (GET and HEAD only); everything else goes on.
struct DashboardMiddleware: RouterMiddleware {
    typealias Context = MasterContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .get || request.method == .head,
              let response = Dashboard.response(path: request.uri.path,
                                                versionQuery: request.uri.queryParameters["v"].map(String.init),
                                                ifNoneMatch: request.headers[.ifNoneMatch],
                                                head: request.method == .head)
        else { return try await next(request, context) }
        return response
    }
}

extension HTTPFields.Element.Name {
    // Constant, valid header names (the initializer fails only on characters a token may not hold).
    static let contentSecurityPolicy = Self("Content-Security-Policy")!
    static let contentTypeOptions = Self("X-Content-Type-Options")!
    static let referrerPolicy = Self("Referrer-Policy")!
}
