import Foundation
@testable import PaddockOpenJD
import Yams

/// YAML text to the template tree, the way the CLI reads a template (numbers keep their text).
func yamlValue(_ text: String) throws -> TemplateValue {
    guard let node = try Yams.compose(yaml: text) else { return .null }
    return try convert(node)
}

private func convert(_ node: Node) throws -> TemplateValue {
    switch node {
    case .scalar(let scalar):
        switch Tag.Name(rawValue: node.tag.rawValue) {
        case .null: return .null
        case .bool: return node.bool.map(TemplateValue.bool) ?? .string(scalar.string)
        case .int: return node.int.map { .number(String($0)) } ?? .string(scalar.string)
        // YAML 1.1 (PyYAML, which the reference reads templates with) writes floats with a '.':
        // `1e2` is a string there, and a <floatstring> keeps its text.
        case .float: return scalar.string.contains(".") ? .number(scalar.string) : .string(scalar.string)
        default: return .string(scalar.string)
        }
    case .sequence(let sequence):
        return .array(try sequence.map(convert))
    case .mapping(let mapping):
        var object = TemplateObject()
        for (key, value) in mapping {
            guard case .scalar(let name) = key else { throw OpenJDError("", "mapping keys must be strings") }
            object[name.string] = try convert(value)
        }
        return .object(object)
    case .alias:
        throw OpenJDError("", "YAML aliases are not supported")
    }
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
