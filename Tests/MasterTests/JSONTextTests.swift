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

    /// The plain form is read directly, anything else is left to `JSONDecoder`: both read the same.
    @Test func plainTextIsReadDirectlyAndTheRestLeftToTheDecoder() throws {
        #expect(JSONText.strings("[]") == [])
        #expect(JSONText.strings(#"["/bin/true"]"#) == ["/bin/true"])
        #expect(JSONText.strings(#"["a,b","c:d]","é 日本 🎬",""]"#) == ["a,b", "c:d]", "é 日本 🎬", ""])
        #expect(JSONText.stringMap("{}") == [:])
        #expect(JSONText.stringMap(#"{"A":"1","b:c":"d,e"}"#) == ["A": "1", "b:c": "d,e"])
        // Not the plain form: escapes, whitespace, other types, duplicate keys, broken text.
        for text in [#"["a\"b"]"#, #"["a\/b"]"#, #"[ "a"]"#, #"["a" ]"#, "[1]", #"["a",]"#, #"[,"a"]"#, #"["a""b"]"#,
                     #"["a"#, "", "[", "]", "null", #"{"a":1}"#, #"{"a":"1","a":"2"}"#, #"{"a""b"}"#, #"{"a":"1",}"#,
                     "[\"a\u{1}\"]", #"{"a":"1"} "#] {
            #expect(JSONText.strings(text) == nil && JSONText.stringMap(text) == nil, "\(text)")
        }
        // Whatever the writer wrote reads back the same through the store's reader.
        let lists: [[String]] = [[], Self.awkward, Self.awkward.reversed(), ["a", "b,c", "d"]]
        for list in lists { #expect(try SQLStore.decode([String].self, JSONText.array(list)) == list) }
        var map: [String: String] = [:]
        for (index, value) in Self.awkward.enumerated() { map["k\(index) \(value.prefix(20))"] = value }
        for candidate in [[:], map, ["PATH": "/usr/bin:/bin", "A": "x=y"]] {
            #expect(try SQLStore.decode([String: String].self, JSONText.object(candidate)) == candidate)
        }
        // Broken text is still refused.
        #expect(throws: (any Error).self) { try SQLStore.decode([String].self, #"["a","#) }
        #expect(throws: (any Error).self) { try SQLStore.decode([String: String].self, "{") }
    }
}
