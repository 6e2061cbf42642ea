import Foundation
import PaddockProtocol
import Testing

/// Refusals written for the people who write job files: where, what, and how to fix it; never a
/// Swift type name.
@Suite struct ErrorMessageTests {
    static func job(task: String) -> String {
        #"{"name": "j", "tasks": [{"name": "t", \#(task)}]}"#
    }

    static let swiftNames = ["Array<", "Dictionary<", "Optional<", "Int64", "String.Type", "Any>"]

    @Test func anUnknownFieldIsSaidAtItsPlaceWithTheFieldItMostLikelyMeant() throws {
        let error = try #require(Wire.rejection(JobSubmission.self, Self.job(task: #""comand": ["true"]"#)))
        #expect(error.message == "tasks[0]: unknown field 'comand' (did you mean 'command'?)", "\(error.message)")
        #expect(error.field == "tasks[0].comand")

        let nested = try #require(Wire.rejection(JobSubmission.self,
                                                 Self.job(task: #""command": ["x"], "requirements": {"rma": "1GiB"}"#)))
        #expect(nested.message == "tasks[0].requirements: unknown field 'rma' (did you mean 'ram'?)", "\(nested.message)")

        // Nothing close enough: no guess.
        let far = try #require(Wire.rejection(JobSubmission.self, Self.job(task: #""command": ["x"], "zzzzzzzz": 1"#)))
        #expect(far.message == "tasks[0]: unknown field 'zzzzzzzz'", "\(far.message)")
    }

    @Test func aCommandWrittenAsAStringSaysHowToWriteAnArgumentList() throws {
        let error = try #require(Wire.rejection(JobSubmission.self, Self.job(task: #""command": "echo hi""#)))
        #expect(error.field == "tasks[0].command")
        #expect(error.message.hasPrefix("tasks[0].command: expected a list, found a string"), "\(error.message)")
        #expect(error.message.contains(#"["sh", "-c", "echo hi"]"#), "\(error.message)")
    }

    @Test func wrongKindsAreNamedInWordsNotSwiftTypes() throws {
        let cases: [(String, String)] = [
            (#""command": ["x"], "requirements": {"cpus": "lots"}"#, "tasks[0].requirements.cpus: expected a number, found a string"),
            (#""command": ["x"], "env": ["A=1"]"#, "tasks[0].env: expected a mapping"),
            (#""command": ["x"], "max_attempts": "3""#, "tasks[0].max_attempts: expected a whole number"),
            (#""command": [1, 2]"#, "tasks[0].command[0]: expected a string"),
        ]
        for (task, expected) in cases {
            let error = try #require(Wire.rejection(JobSubmission.self, Self.job(task: task)), "\(task)")
            #expect(error.message.hasPrefix(expected), "\(error.message) for \(task)")
            for name in Self.swiftNames { #expect(!error.message.contains(name), "\(error.message)") }
        }
    }

    @Test func aMissingFieldIsSaidAtTheMappingThatLacksIt() throws {
        let error = try #require(Wire.rejection(JobSubmission.self, #"{"name": "j", "tasks": [{"name": "t"}]}"#))
        #expect(error.message.hasPrefix("tasks[0]: missing field 'command'"), "\(error.message)")
        #expect(error.field == "tasks[0].command")
    }
}
