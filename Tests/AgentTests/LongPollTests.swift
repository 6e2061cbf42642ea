import Foundation
@testable import PaddockAgent
import Testing

/// The long-poll client's reading of HTTP/1.1 answers.
@Suite struct LongPollTests {
    func data(_ text: String) -> Data { Data(text.utf8) }

    @Test func contentLengthAnswers() throws {
        let answer = data("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\": true}")
        let (status, body) = try #require(LongPoll.parse(answer))
        #expect(status == 200 && String(decoding: body, as: UTF8.self) == "{\"a\": true}")
        #expect(LongPoll.parse(answer.dropLast(3)) == nil, "incomplete until the whole body is in")
        #expect(LongPoll.parse(data("HTTP/1.1 409 Conflict\r\nContent-Len")) == nil)
    }

    @Test func chunkedAnswers() throws {
        let answer = data("HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        let (status, body) = try #require(LongPoll.parse(answer))
        #expect(status == 404 && String(decoding: body, as: UTF8.self) == "hello world")
        #expect(LongPoll.parse(data("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")) == nil)
    }
}
