import Foundation
@testable import PaddockOpenJD
import Yams

/// YAML text to the template tree, the way the CLI reads a template (numbers keep their text).
func yamlValue(_ text: String) throws -> TemplateValue {
    try TemplateValue(yaml: text) ?? .null
}

func template(_ yaml: String) throws -> JobTemplate {
    try JobTemplate(try yamlValue(yaml))
}

func job(_ yaml: String, _ values: [String: String] = [:], limit: Int = 100_000) throws -> OpenJDJob {
    try OpenJDJob(template: try template(yaml), values: values.mapValues(TemplateValue.string), taskLimit: limit)
}

/// The error a closure throws, as text (fails the test through the caller's #expect if none).
func openJDError(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch let error as OpenJDError {
        return error.description
    } catch {
        return "unexpected: \(error)"
    }
}

/// A one-step template around a parameter space (YAML, indented for `parameterSpace:`).
func spaceTemplate(_ space: String, parameters: String = "") -> String {
    """
    specificationVersion: jobtemplate-2023-09
    name: T
    \(parameters)
    steps:
    - name: S
      parameterSpace:
    \(space.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n"))
      script:
        actions:
          onRun:
            command: echo
    """
}

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

func fixture(_ name: String) throws -> String {
    try String(contentsOf: fixtures.appendingPathComponent(name), encoding: .utf8)
}

