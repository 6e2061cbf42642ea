import Foundation
@testable import PaddockAgent
import Testing

/// The agent's reading of progress from a task's output, under the regex's time budget.
@Suite struct ProgressReaderTests {
    static func chunk(_ lines: [String]) -> [UInt8] { Array((lines.joined(separator: "\n") + "\n").utf8) }

    /// A chunk read whole (a busy agent reads 64 KiB at once) holds the lines that exhaust the pattern
    /// and the PROGRESS line after them: the pattern is dropped, the PROGRESS line still counts.
    @Test func aProgressLineInTheChunkThatExhaustsThePatternStillCounts() async {
        var reader = ProgressReader(progressRegex: "^(a+)+$", frames: nil)
        let catastrophic = String(repeating: "a", count: 3000) + "b"
        let first = await reader.feed(Self.chunk([catastrophic, catastrophic, "PROGRESS 50%"]))
        #expect(first.progress == 0.5)
        #expect(first.warning?.contains("is not read for the rest of this task") == true)
        // Dropped: the next chunk is read for PROGRESS lines only, at once, and warns no more.
        let started = ContinuousClock.now
        let second = await reader.feed(Self.chunk([catastrophic, "PROGRESS 75%"]))
        #expect(second.progress == 0.75 && second.warning == nil)
        #expect(ContinuousClock.now - started < .milliseconds(200))
    }

    @Test func aBenignPatternReadsEveryChunk() async {
        var reader = ProgressReader(progressRegex: #"Fra:(\d+)"#, frames: 1...100)
        let read = await reader.feed(Self.chunk(["Fra:10 Mem:1M", "noise", "Fra:50 Mem:2M"]))
        #expect(read.warning == nil)
        #expect(read.progress.map { abs($0 - 0.5) < 0.02 } == true, "\(String(describing: read.progress))")
        #expect(await reader.feed(Self.chunk(["nothing here"])).progress == nil)
    }
}
