import Foundation
import PaddockProtocol
import Testing

/// OpenJD's `openjd_redacted_env:` lines: their values kept out of the log (REDACTED_ENV_VARS).
@Suite struct RedactionTests {
    func run(_ chunks: [String], secrets: [String] = []) -> (String, Redactor) {
        var redactor = Redactor(secrets: secrets.map { Array($0.utf8) })
        var text = ""
        for chunk in chunks { text += String(decoding: redactor.feed(Data(chunk.utf8)), as: UTF8.self) }
        text += String(decoding: redactor.flush(), as: UTF8.self)
        return (text, redactor)
    }

    @Test func theLineAndLaterOccurrencesAreMasked() {
        let (text, redactor) = run(["hello\nopenjd_redacted_env: TOKEN=s3cr3t\n", "using s3cr3t and s3cr3ts3cr3t\n"])
        #expect(text == "hello\nopenjd_redacted_env: TOKEN=********\nusing ******** and ********\n")
        #expect(redactor.secrets == [Array("s3cr3t".utf8)])
    }

    @Test func valuesCutBetweenChunksAreFound() {
        #expect(run(["openjd_red", "acted_env: K=abc", "def\nxx abc", "def yy\r", "abcdef"]).0
            == "openjd_redacted_env: K=********\nxx ******** yy\r********")
        // A chunk that ends in the middle of the marker is held, the rest goes through at once.
        var redactor = Redactor()
        #expect(String(decoding: redactor.feed(Data("done\nopenjd_re".utf8)), as: UTF8.self) == "done\n")
        #expect(String(decoding: redactor.feed(Data("ally: no\n".utf8)), as: UTF8.self) == "openjd_really: no\n")
    }

    @Test func withoutValuesOutputPassesUnchanged() {
        let bytes = Data([0xff, 0xfe, 0x0a, 0x41, 0x42])
        var redactor = Redactor()
        #expect(redactor.feed(bytes) == bytes)
        #expect(run(["progress 50%", " 60%"]).0 == "progress 50% 60%")
        #expect(run(["not openjd_redacted_env: X=1\n"]).0 == "not openjd_redacted_env: X=1\n", "only at the start of a line")
    }

    @Test func overlappingAndMultiLineValues() {
        #expect(run(["aXbXc abc\n"], secrets: ["aXb", "bXc"]).0 == "******** abc\n")
        let (_, redactor) = run(["openjd_redacted_env: K=no equals sign\n"])
        #expect(redactor.secrets == [Array("no equals sign".utf8)])
        var many = Redactor()
        many.add(Array("one\ntwo".utf8))
        #expect(Set(many.secrets.map { String(decoding: $0, as: UTF8.self) }) == ["one\ntwo", "one", "two"])
    }
}
