import PaddockProtocol
import Testing

@Suite("Progress lines")
struct ProgressTests {
    @Test(arguments: [("PROGRESS 0.42", 0.42), ("PROGRESS 42%", 0.42), ("  PROGRESS 1 ", 1.0), ("PROGRESS 150%", 1.0),
                      ("PROGRESS -3", 0.0)] as [(String, Double)])
    func progressLines(_ line: String, _ expected: Double) throws {
        let value = try #require(ProgressLine.parse(line))
        #expect(abs(value - expected) < 1e-9)
    }

    @Test(arguments: ["progress 0.5", "PROGRESS", "PROGRESS abc", "PROGRESS nan", "Fra:3"])
    func otherLinesAreNotProgress(_ line: String) {
        #expect(ProgressLine.parse(line) == nil)
    }

    @Test func blenderFramesAgainstTheTasksRange() throws {
        let pattern = try #require(ProgressLine.Pattern(#"Fra:(\d+)"#))
        #expect(pattern.progress(of: "Fra:15 Mem:12M | Rendering", frames: 11...20) == 0.5)
        #expect(pattern.progress(of: "Fra:20", frames: 11...20) == 1)
        #expect(pattern.progress(of: "Saved: /tmp/x.png", frames: 11...20) == nil)
        #expect(pattern.progress(of: "Fra:40", frames: nil) == 0.4, "without frames the group is a percentage")
        #expect(ProgressLine.Pattern("no group") == nil)
        #expect(ProgressLine.Pattern("(unclosed") == nil)
    }

    @Test func scannerJoinsLinesAcrossChunks() {
        var scanner = ProgressLine.Scanner(pattern: ProgressLine.Pattern(#"Fra:(\d+)"#), frames: 1...4)
        #expect(scanner.feed(Array("noise\nPROGR".utf8)) == nil)
        #expect(scanner.feed(Array("ESS 0.3\n".utf8)) == 0.3)
        #expect(scanner.feed(Array("Fra:2\rFra:3\n".utf8)) == 0.75)
    }

    @Test func aMatchUnderABudgetStopsAtItsDeadline() throws {
        let catastrophic = try #require(ProgressLine.Pattern("^(a+)+$"))
        let line = String(repeating: "a", count: 3000) + "b"
        let started = ContinuousClock.now
        #expect(catastrophic.evaluate(line, frames: nil, until: .now + .milliseconds(100)) == .outOfTime)
        #expect(ContinuousClock.now - started < .seconds(10))
        let blender = try #require(ProgressLine.Pattern(#"Fra:(\d+)"#))
        #expect(blender.evaluate("Fra:15 Mem:12M", frames: 11...20, until: .now + .seconds(5)) == .progress(0.5))
        #expect(blender.evaluate("Saved", frames: 11...20, until: .now + .seconds(5)) == .nothing)
    }

    @Test func scannerLinesKeepTheUnfinishedLineForLater() {
        var scanner = ProgressLine.Scanner()
        #expect(scanner.lines(Array("one\ntw".utf8)) == ["one"])
        #expect(scanner.lines(Array("o\r\n".utf8)) == ["two", ""])
    }
}
