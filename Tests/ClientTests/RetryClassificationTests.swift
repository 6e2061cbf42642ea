import Foundation
import PaddockClient
import PaddockProtocol
import Testing

/// Which answers the agent waits out and retries (with its `Backoff`) and which are the master's final
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
    func aFrontendWithNoMasterBehindItIsRetried(_ status: Int) {
        // What HAProxy or nginx send: an HTML page, not the master's JSON.
        let html = "<html><body><h1>\(status) Bad Gateway</h1>nginx</body></html>"
        let error = answer(status, html)
        #expect(error.isRetryable, "\(status)")
        #expect(error.status == status)
        #expect(ClientError.isRetryable(status: status))
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
}
