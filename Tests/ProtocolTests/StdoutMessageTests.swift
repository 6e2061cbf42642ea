import Foundation
import PaddockProtocol
import Testing

/// OpenJD's `openjd_status:` and `openjd_fail:` lines (issue 18, item 7).
@Suite struct StdoutMessageTests {
    @Test func linesAreMatchedWhole() {
        #expect(StdoutMessage.parse("openjd_status: Loading the things") == .status("Loading the things"))
        #expect(StdoutMessage.parse("openjd_fail: The rules of mathematics have been violated!")
                == .fail("The rules of mathematics have been violated!"))
        #expect(StdoutMessage.parse("openjd_status:  two spaces") == .status(" two spaces"))
        for line in ["openjd_status:", "openjd_status: ", "openjd_status:x", " openjd_status: x", "OPENJD_STATUS: x",
                     "echo openjd_fail: x", "openjd_progress: 50", "openjd_failure: x"] {
            #expect(StdoutMessage.parse(line) == nil, "\(line)")
        }
        let long = String(repeating: "é", count: 3000)
        #expect(StdoutMessage.parse("openjd_status: " + long) == .status(String(long.prefix(StdoutMessage.textLimit))))
    }

    @Test func theScannerReadsLinesAcrossChunks() {
        var scanner = StdoutMessage.Scanner()
        #expect(scanner.feed(Data("hello\nopenjd_sta".utf8)).isEmpty)
        #expect(scanner.feed(Data("tus: half\r\nopenjd_fail: no\nopenjd_status: unfinished".utf8)) == [.status("half"), .fail("no")])
        #expect(scanner.feed(Data("\n".utf8)) == [.status("unfinished")])
    }

    @Test func anExchangeCarriesABoundedStatus() throws {
        let ok = #"{"progress": [{"task": "t1", "epoch": 1, "progress": 0.5, "status": "Loading"}]}"#
        let request = try WireJSON.decoder().decode(ExchangeRequest.self, from: Data(ok.utf8))
        #expect(request.progress.first?.status == "Loading")
        let none = #"{"progress": [{"task": "t1", "epoch": 1, "progress": 0.5}]}"#
        #expect(try WireJSON.decoder().decode(ExchangeRequest.self, from: Data(none.utf8)).progress.first?.status == nil)
        for status in ["\"\"", "\"" + String(repeating: "x", count: StdoutMessage.textLimit + 1) + "\""] {
            let body = #"{"progress": [{"task": "t1", "epoch": 1, "progress": 0.5, "status": \#(status)}]}"#
            #expect(throws: DecodingError.self) { try WireJSON.decoder().decode(ExchangeRequest.self, from: Data(body.utf8)) }
        }
        let encoded = try WireJSON.encoder().encode(ExchangeProgress(task: TaskID(rawValue: 1), epoch: LeaseEpoch(1), progress: 1))
        #expect(!String(decoding: encoded, as: UTF8.self).contains("status"))
    }
}
