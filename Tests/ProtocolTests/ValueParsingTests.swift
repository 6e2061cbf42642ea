import Foundation
import PaddockProtocol
import Testing

@Suite("ByteSize")
struct ByteSizeTests {
    static let parsed: [(String, Int64)] = [
        ("4096", 4096),
        ("0", 0),
        ("1b", 1),
        ("1B", 1),
        ("8GiB", 8 << 30),
        ("8gib", 8 << 30),
        ("8 GiB", 8 << 30),
        ("  8GiB  ", 8 << 30),
        ("8Gi", 8 << 30),
        ("8G", 8 << 30),
        ("512MiB", 512 << 20),
        ("512M", 512 << 20),
        ("1.5G", 1_610_612_736),
        ("1.5GiB", 1_610_612_736),
        (".5K", 512),
        ("1k", 1024),
        ("1KiB", 1024),
        ("1KB", 1000),
        ("100MB", 100_000_000),
        ("2GB", 2_000_000_000),
        ("1TB", 1_000_000_000_000),
        ("2TiB", 2 << 40),
        ("2T", 2 << 40),
        ("1PiB", 1 << 50),
        ("1P", 1 << 50),
        ("1PB", 1_000_000_000_000_000),
        ("1125899906842624", 1 << 50),
    ]

    static let formatted: [(Int64, String)] = [
        (0, "0B"),
        (100, "100B"),
        (1023, "1023B"),
        (1024, "1KiB"),
        (1536, "1.5KiB"),
        (512 << 20, "512MiB"),
        (8 << 30, "8GiB"),
        (1_610_612_736, "1.5GiB"),
        (2 << 40, "2TiB"),
        (1 << 50, "1PiB"),
        ((1 << 20) - 1, "1MiB"),
        ((1 << 30) - 1, "1GiB"),
        (1_000_000_000, "953.7MiB"),
    ]

    @Test(arguments: parsed)
    func parses(_ text: String, _ bytes: Int64) {
        #expect(ByteSize.parse(text) == bytes, "\(text)")
    }

    @Test(arguments: ["", " ", "abc", "GiB", "-1", "-1GiB", "1.2.3", "8XB", "8 G B", "1e3", "nan", "inf", "infinity",
                      ".", "8GiBs", "0x10", "1,5G", "2PiB", "1125899906842625", "99999999999TiB",
                      "1" + String(repeating: "0", count: 40), "１２", "８GiB"])
    func refuses(_ text: String) {
        #expect(ByteSize.parse(text) == nil, "\(text)")
    }

    @Test(arguments: formatted)
    func formats(_ bytes: Int64, _ text: String) {
        #expect(ByteSize.format(bytes) == text)
    }

    @Test func formatThenParseIsExactForWholeUnits() {
        for shift in stride(from: 0, through: 50, by: 10) {
            for n: Int64 in [1, 2, 3, 7, 512, 1000] where (n << shift) <= ByteSize.maximum {
                let bytes = n << shift
                #expect(ByteSize.parse(ByteSize.format(bytes)) == bytes, "\(bytes)")
            }
        }
    }
}

@Suite("DurationText")
struct DurationTextTests {
    static let parsed: [(String, Double)] = [
        ("1s", 1), ("1", 1), ("1.5", 1.5), ("90", 90), ("500ms", 0.5), ("5m", 300), ("5min", 300),
        ("2h", 7200), ("1d", 86400), ("30d", 2_592_000), (" 30S ", 30), ("0", 0), ("0.25s", 0.25),
    ]

    @Test(arguments: parsed)
    func parses(_ text: String, _ seconds: Double) {
        #expect(DurationText.parse(text) == seconds, "\(text)")
    }

    @Test(arguments: ["", "s", "ms", "-1", "-1s", "1w", "31d", "2592001", "721h", "abc", "1e3", "1.2.3s", "nan",
                      "inf", "5 m", String(repeating: "9", count: 40)])
    func refuses(_ text: String) {
        #expect(DurationText.parse(text) == nil, "\(text)")
    }
}

/// `trimmingSpaces` trims what Foundation's `trimmingCharacters(in: .whitespaces)` trims.
@Suite struct SpaceTrimmingTests {
    @Test(arguments: ["", " ", "\t \u{00A0}", "x", "  x  ", "\tPROGRESS 5%\t", "\u{2003}a b\u{3000}", "\na\n", " \r\n x \r\n ",
                      "\u{2028}a", "a\u{0085}", " é ", "👍🏽 ", "\u{200B}a\u{200B}"])
    func trimsAsFoundationDoes(_ text: String) {
        #expect(String(text.trimmingSpaces) == text.trimmingCharacters(in: .whitespaces), "\(text.debugDescription)")
        #expect(String(text[...].trimmingSpaces) == text.trimmingCharacters(in: .whitespaces), "\(text.debugDescription)")
    }
}

@Suite("FrameRange")
struct FrameRangeTests {
    @Test func oneToTwoFiftyInChunksOfTen() throws {
        let range = try #require(FrameRange("1-250"))
        let chunks = range.chunks(of: 10)
        #expect(chunks.count == 25)
        #expect(chunks.first == 1...10)
        #expect(chunks[1] == 11...20)
        #expect(chunks.last == 241...250)
        #expect(chunks.map(\.count).reduce(0, +) == 250)
    }

    @Test func aShortLastChunk() throws {
        #expect(try #require(FrameRange("1-25")).chunks(of: 10) == [1...10, 11...20, 21...25])
    }

    @Test func chunksNeverSpanTwoRanges() throws {
        let range = try #require(FrameRange("1-10,20-30"))
        #expect(range.ranges == [1...10, 20...30])
        #expect(range.chunks(of: 4) == [1...4, 5...8, 9...10, 20...23, 24...27, 28...30])
        #expect(range.chunks(of: 100) == [1...10, 20...30])
    }

    @Test func singleFramesAndSpaces() throws {
        #expect(try #require(FrameRange("7")).chunks(of: 10) == [7...7])
        #expect(try #require(FrameRange(" 1 - 3 , 5 ")).ranges == [1...3, 5...5])
        #expect(try #require(FrameRange("0-2")).chunks(of: 1) == [0...0, 1...1, 2...2])
    }

    @Test(arguments: ["", ",", "a", "a-b", "5-1", "1-2-3", "-5", "1-", "-", "1..5", "1-5, ,7", "1 2",
                      "1-100000001", String(repeating: "1,", count: 600)])
    func refuses(_ text: String) {
        #expect(FrameRange(text) == nil, "\(text)")
    }

    @Test func degenerateChunkSizesDoNotTrapOrHang() throws {
        let range = try #require(FrameRange("1-3"))
        #expect(range.chunks(of: 0) == [1...1, 2...2, 3...3])
        #expect(range.chunks(of: -5) == [1...1, 2...2, 3...3])
        #expect(range.chunks(of: .max) == [1...3])
    }

    @Test func hugeRangesStopPastTheTaskLimit() throws {
        let chunks = try #require(FrameRange("1-100000000")).chunks(of: 1)
        #expect(chunks.count == Limits.tasksPerJob + 1)
    }
}

@Suite("Identifiers")
struct IdentifierTests {
    @Test func parsePrefixedAndBare() {
        #expect(JobID("j12")?.rawValue == 12)
        #expect(JobID("12") == JobID("j12"))
        #expect(TaskID("t345")?.rawValue == 345)
        #expect(AgentID("a5")?.rawValue == 5)
        #expect(JobID("j999999999999999999")?.rawValue == 999_999_999_999_999_999)
    }

    @Test(arguments: ["", "j", "j0", "0", "j-1", "-1", "t12", "a12", "J12", "j12x", "j 12", " j12", "j1.5", "jj12",
                      "j+12", "j0x1f", "j1234567890123456789", "j١٢", "j１２"])
    func refusesBadJobIDs(_ text: String) {
        #expect(JobID(text) == nil, "\(text)")
    }

    @Test func describeWithPrefix() {
        #expect(JobID(rawValue: 12).description == "j12")
        #expect(TaskID(rawValue: 34).description == "t34")
        #expect(AgentID(rawValue: 5).description == "a5")
        #expect(APIPath.task(TaskID(rawValue: 34)) == "/v1/tasks/t34")
        #expect(APIPath.claim(AgentID(rawValue: 5)) == "/v1/agents/a5/claim")
    }

    @Test func jsonStrings() throws {
        #expect(try Wire.string([JobID(rawValue: 12)]) == #"["j12"]"#)
        #expect(try Wire.decode([TaskID].self, #"["t1", "2"]"#) == [TaskID(rawValue: 1), TaskID(rawValue: 2)])
        #expect(throws: DecodingError.self) { try Wire.decode([JobID].self, "[12]") }
        #expect(throws: DecodingError.self) { try Wire.decode([JobID].self, #"["t12"]"#) }
        #expect(throws: DecodingError.self) { try Wire.decode([AgentID].self, #"["a0"]"#) }
    }

    @Test func orderedByNumber() {
        #expect(JobID(rawValue: 9) < JobID(rawValue: 10))
        #expect(LeaseEpoch(1) < LeaseEpoch(2))
        #expect([TaskID(rawValue: 10), TaskID(rawValue: 9)].sorted().map(\.description) == ["t9", "t10"])
    }

    @Test func epochsAreNumbers() throws {
        #expect(try Wire.string([LeaseEpoch(7)]) == "[7]")
        #expect(try Wire.decode([LeaseEpoch].self, "[7]") == [LeaseEpoch(7)])
        #expect(throws: DecodingError.self) { try Wire.decode([LeaseEpoch].self, #"["7"]"#) }
    }
}
