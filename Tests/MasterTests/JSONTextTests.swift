import Foundation
@testable import PaddockMaster
import Testing

/// The store's own JSON writer for string lists and maps reads back, with `JSONDecoder`, as exactly
/// what was written, whatever the strings hold.
@Suite struct JSONTextTests {
    static let awkward = ["", "plain", "with \"quotes\"", "back\\slash", "line\nbreak\r\ttab", "\u{0}\u{1}\u{1f}\u{7f}",
                          "é ü 日本 🎬", "{start}-{end}", "/slash/", "\u{2028}\u{2029}", String(repeating: "x", count: 10_000)]

    @Test func listsReadBackAsWritten() throws {
        for list in [[], Self.awkward, [Self.awkward[2]], Self.awkward.reversed()] {
            let text = JSONText.array(list)
            #expect(try JSONDecoder().decode([String].self, from: Data(text.utf8)) == list, "\(text.prefix(200))")
        }
    }

    @Test func mapsReadBackAsWrittenWithTheirKeysInOrder() throws {
        var map: [String: String] = [:]
        for (index, value) in Self.awkward.enumerated() { map["k\(index) \(value.prefix(20))"] = value }
        for candidate in [[:], map, ["A": "1"]] {
            let text = JSONText.object(candidate)
            #expect(try JSONDecoder().decode([String: String].self, from: Data(text.utf8)) == candidate)
        }
        #expect(JSONText.object(["b": "2", "a": "1"]) == #"{"a":"1","b":"2"}"#)
        #expect(JSONText.array(["a\u{1}"]) == #"["a\u0001"]"#)
    }
}
