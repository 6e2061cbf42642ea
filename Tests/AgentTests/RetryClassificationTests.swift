import Foundation
@testable import PaddockAgent
import PaddockProtocol
import Testing

/// Which answers the agent waits out and retries (with `Backoff`) and which are the master's final
/// word. A frontend with no healthy master, or a master whose database is down, is "away", like an
/// unreachable master: its report is kept and sent again, never dropped.
@Suite struct RetryClassificationTests {
    func answer(_ status: Int, _ body: String) -> ClientError { .answer(status: status, body: Data(body.utf8)) }

    @Test func aMasterWithItsDatabaseDownIsRetried() {
        let error = answer(503, #"{"error":"unavailable","message":"the database is unreachable; retry"}"#)
        #expect(error.isRetryable)
        #expect(error.status == 503)
        if case .api(let paddock) = error { #expect(paddock.code == "unavailable") } else { Issue.record("\(error)") }
    }

    @Test(arguments: [502, 503, 504])
    func aFrontendWithNoMasterBehindItIsRetried(_ status: Int) throws {
        // What HAProxy or nginx send: an HTML page, not the master's JSON.
        let html = "<html><body><h1>\(status) Bad Gateway</h1>nginx</body></html>"
        let error = answer(status, html)
        #expect(error.isRetryable, "\(status)")
        #expect(error.status == status)
        // The same through the long-poll socket reader.
        let raw = "HTTP/1.1 \(status) Service Unavailable\r\nContent-Type: text/html\r\nContent-Length: \(html.utf8.count)\r\n\r\n\(html)"
        let (parsed, body) = try #require(LongPoll.parse(Data(raw.utf8)))
        #expect(ClientError.answer(status: parsed, body: body).isRetryable)
        #expect(answer(status, "").isRetryable, "an empty body too")
    }

    @Test func transportFailuresAndOverloadAreRetried() {
        #expect(ClientError.transport("connection refused").isRetryable)
        #expect(answer(429, #"{"error":"too_many_requests","message":"slow down"}"#).isRetryable)
        #expect(answer(408, "").isRetryable)
        #expect(answer(500, #"{"error":"internal","message":"internal error; see the master's log"}"#).isRetryable)
    }

    @Test func theMastersRefusalsAreFinal() {
        #expect(!answer(409, #"{"error":"stale_epoch","message":"no longer counts"}"#).isRetryable)
        #expect(!answer(401, #"{"error":"unauthorized","message":"missing or invalid bearer token"}"#).isRetryable)
        #expect(!answer(403, "").isRetryable)
        #expect(!answer(400, #"{"error":"invalid_request","message":"bad"}"#).isRetryable)
        #expect(!answer(404, "").isRetryable)
        #expect(!ClientError.protocolMismatch("not JSON").isRetryable)
    }

    @Test func backoffGrowsWithJitterUpToItsCap() {
        var backoff = Backoff(base: 0.1, cap: 1)
        let delays = (0..<8).map { _ in backoff.next() }
        #expect(delays.allSatisfy { $0 <= .seconds(1) && $0 >= .milliseconds(50) })
        #expect(delays.suffix(3).allSatisfy { $0 >= .milliseconds(500) }, "capped, still jittered: \(delays)")
        backoff.reset()
        #expect(backoff.next() <= .milliseconds(100))
    }
}
