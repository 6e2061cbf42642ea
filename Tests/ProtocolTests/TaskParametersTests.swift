import Foundation
import PaddockProtocol
import Testing

/// A task's `parameters` (issue 18: an OpenJD task's values, shown in its view): kept as given, bounded.
@Suite struct TaskParametersTests {
    @Test func parametersRoundTripAndAreBounded() throws {
        let spec = try Wire.decode(TaskSpec.self, #"{"name": "t", "command": ["true"], "parameters": {"Frame": "7", "Layer": "bg"}}"#)
        #expect(spec.parameters == ["Frame": "7", "Layer": "bg"])
        let again = try Wire.decode(TaskSpec.self, String(decoding: try WireJSON.encoder().encode(spec), as: UTF8.self))
        #expect(again == spec)
        #expect(try Wire.decode(TaskSpec.self, #"{"name": "t", "command": ["true"]}"#).parameters.isEmpty)

        let many = (0...Limits.taskParameters).map { "\"p\($0)\": \"v\"" }.joined(separator: ", ")
        let tooMany = Wire.rejection(JobSubmission.self, #"{"name": "j", "tasks": [{"name": "t", "command": ["true"], "parameters": {\#(many)}}]}"#)
        #expect(tooMany?.status == 400 && tooMany?.field == "tasks[0].parameters", "\(String(describing: tooMany))")
        let long = String(repeating: "x", count: Limits.taskParameterValue + 1)
        #expect(Wire.rejection(TaskSpec.self, #"{"name": "t", "command": ["true"], "parameters": {"Frame": "\#(long)"}}"#)?.status == 400)
        #expect(Wire.rejection(TaskSpec.self, #"{"name": "t", "command": ["true"], "parameters": {"": "1"}}"#)?.status == 400)
        #expect(Wire.rejection(TaskSpec.self, #"{"name": "t", "command": ["true"], "parameters": {"Frame": 7}}"#)?.status == 400)
    }
}
