import Foundation
import PaddockProtocol
import PaddockTestSupport
import Testing

/// Property tests replay the same cases every run.
typealias SeededGenerator = SplitMix64

enum Wire {
    static func decode<T: Decodable>(_ type: T.Type, _ json: String) throws -> T {
        try WireJSON.decoder().decode(type, from: Data(json.utf8))
    }

    /// The error a master would answer for this body: decoding must fail, and `describe` says how.
    static func rejection<T: Decodable>(_ type: T.Type, _ json: String,
                                        sourceLocation: SourceLocation = #_sourceLocation) -> PaddockError? {
        do {
            _ = try decode(type, json)
            Issue.record("expected \(type) to refuse \(json.prefix(200))", sourceLocation: sourceLocation)
            return nil
        } catch {
            return WireJSON.describe(error)
        }
    }

    /// The top-level keys of the JSON a value encodes to, and the object itself.
    static func object<T: Encodable>(_ value: T) throws -> [String: Any] {
        let data = try WireJSON.encoder().encode(value)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func string<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try WireJSON.encoder().encode(value), as: UTF8.self)
    }
}

/// A job body with one task whose fields are spliced in: `job(task: #""requirements": {"cpus": -1}"#)`.
func jobJSON(task extra: String = "", job jobExtra: String = "") -> String {
    let taskFields = [#""name": "t", "command": ["echo", "hi"]"#, extra].filter { !$0.isEmpty }.joined(separator: ", ")
    let jobFields = [#""name": "j""#, jobExtra, #""tasks": [{\#(taskFields)}]"#].filter { !$0.isEmpty }
        .joined(separator: ", ")
    return "{\(jobFields)}"
}

func requirements(cpus: Double = 1, ram: Int64 = 0, disk: Int64 = 0, gpus: Int64 = 0,
                  tags: [String] = []) -> TaskRequirements {
    TaskRequirements(resources: ResourceVector(cpus: cpus, ram: ram, disk: disk, gpus: gpus), tags: tags)
}

let GiB: Int64 = 1 << 30
let MiB: Int64 = 1 << 20
