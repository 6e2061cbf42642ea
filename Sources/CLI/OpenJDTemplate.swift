import Foundation
import PaddockOpenJD

/// `paddock submit TEMPLATE -p NAME=VALUE`: an Open Job Description template is sent to the master
/// as it is, with its parameter values; the master converts it (docs/OPENJD.md).
enum OpenJDTemplateFile {
    /// The document, when it is an OpenJD job template (`specificationVersion: jobtemplate-2023-09`).
    static func template(_ data: Data) throws -> TemplateValue? {
        try document(data, version: JobTemplate.specificationVersion, kind: "job templates")
    }

    /// An environment template (`--env FILE`, `specificationVersion: environment-2023-09`).
    static func environment(_ data: Data, file: String) throws -> TemplateValue {
        guard let document = try document(data, version: EnvironmentTemplate.specificationVersion, kind: "environment templates") else {
            throw OpenJDError("", "\(file) is not an OpenJD environment template (specificationVersion: \(EnvironmentTemplate.specificationVersion))")
        }
        return document
    }

    /// A JSON or YAML document whose `specificationVersion` is `version`; nil when it has none.
    static func document(_ data: Data, version expected: String, kind: String) throws -> TemplateValue? {
        let document: TemplateValue
        if let json = try? TemplateValue(json: data) {
            document = json
        } else {
            guard let text = String(data: data, encoding: .utf8), let value = try? TemplateValue(yaml: text)
            else { return nil }
            document = value
        }
        guard case .string(let version)? = document["specificationVersion"] else { return nil }
        guard version == expected else {
            throw OpenJDError("specificationVersion", "this Paddock reads '\(expected)' \(kind), not '\(version.prefix(64))'")
        }
        return document
    }

    /// The request body: `{"openjd": {"template": ..., "parameters": {NAME: VALUE}}}`.
    ///
    /// PATH parameters are made absolute here, on the submitter's side, as the reference
    /// implementation's client does: a relative default against the template's directory, a
    /// relative value given with -p against the current directory (the master has neither).
    static func body(template: TemplateValue, parameters: [String], templateDirectory: String,
                     pathMappingRules: TemplateValue? = nil, environments: [TemplateValue] = []) throws -> Data {
        // The job's parameters and those of the environments (merged as the master merges them).
        let definitions = try JobTemplate(EnvironmentTemplate.apply(environments, to: template)).parameterDefinitions
        let cwd = FileManager.default.currentDirectoryPath
        var values = TemplateObject()
        for assignment in parameters {
            let parts = assignment.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw OpenJDError("", "-p takes NAME=VALUE, not '\(assignment.prefix(64))'")
            }
            let name = String(parts[0])
            var value = String(parts[1])
            if definitions.contains(where: { $0.name == name && $0.type == .path }) {
                value = absolute(value, against: cwd)
            }
            values[name] = .string(value)
        }
        for definition in definitions where definition.type == .path && values[definition.name] == nil {
            if let relative = definition.defaultValue, !relative.hasPrefix("/"), !relative.isEmpty, !relative.contains("://") {
                values[definition.name] = .string(absolute(relative, against: templateDirectory))
            }
        }
        var openjd = TemplateObject([("template", template), ("parameters", .object(values))])
        if let pathMappingRules { openjd["path_mapping_rules"] = pathMappingRules }
        if !environments.isEmpty { openjd["environments"] = .array(environments) }
        let request = TemplateValue.object(TemplateObject([("openjd", .object(openjd))]))
        return Data(request.json.utf8)
    }

    static func absolute(_ path: String, against directory: String) -> String {
        guard !path.isEmpty, !path.hasPrefix("/") else { return path }
        return URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: directory, isDirectory: true))
            .standardizedFileURL.path
    }
}
