import Foundation
import PaddockProtocol

/// `POST /v1/jobs` with an Open Job Description template:
///
///     {"openjd": {"template": {...}, "parameters": {"Frames": "1-100"}, "environments"?: [{...}]},
///      "owner"?: ..., "priority"?: ..., "labels"?: ..., "max_attempts"?: ..., "after"?: [...]}
///
/// The template is converted here into an ordinary job (a task list), with the Paddock fields
/// beside `openjd` carried over, and checked by the validation step every job goes through
/// (`JobSubmission.validated()`), so that the master stores it exactly as any other job.
public enum OpenJDRequest {
    public static let keys: Set<String> = ["openjd", "owner", "priority", "labels", "max_attempts", "after"]
    public static let openjdKeys: Set<String> = ["template", "parameters", "path_mapping_rules", "environments"]

    /// Cheap test before parsing: a body without the word cannot be an OpenJD submission.
    public static func mayBe(_ bytes: some Collection<UInt8>) -> Bool {
        let needle = Array(#""openjd""#.utf8)
        guard bytes.count >= needle.count else { return false }
        let all = Array(bytes)
        var i = 0
        while i + needle.count <= all.count {
            if all[i] == needle[0], Array(all[i..<i + needle.count]) == needle { return true }
            i += 1
        }
        return false
    }

    /// The failure of a submission: an OpenJD error with its field said from the body's root
    /// (`openjd.template.steps[0]...`, `openjd.parameters.Frames`).
    public struct Refusal: Error, Sendable, CustomStringConvertible {
        public var field: String?
        public var message: String
        public var description: String { message }
    }

    /// The job a body converts to, validated as any submitted job is, and warnings about what
    /// Paddock does not enforce; nil when the body is JSON but not an OpenJD submission (no
    /// top-level `openjd`).
    public static func convert(json bytes: some Collection<UInt8>) throws(Refusal) -> (job: ValidatedJob, warnings: [String])? {
        let body: TemplateValue
        do {
            body = try TemplateValue(json: bytes)
        } catch {
            return nil  // not JSON: the ordinary decoding says so
        }
        guard case .object(let object) = body, let openjd = object["openjd"] else { return nil }
        if let extra = object.keys.first(where: { !keys.contains($0) }) {
            throw Refusal(field: extra, message: "\(extra.prefix(64)): unknown field beside 'openjd' (allowed: "
                + keys.subtracting(["openjd"]).sorted().joined(separator: ", ") + ")")
        }
        guard case .object(let request) = openjd else {
            throw Refusal(field: "openjd", message: "openjd: must be an object with 'template' and 'parameters'")
        }
        if let extra = request.keys.first(where: { !openjdKeys.contains($0) }) {
            throw Refusal(field: "openjd.\(extra)",
                          message: "openjd.\(extra.prefix(64)): unknown field (openjd has 'template', 'parameters', 'environments' and 'path_mapping_rules')")
        }
        guard let given = request["template"] else {
            throw Refusal(field: "openjd.template", message: "openjd.template: field required (the job template, as JSON)")
        }
        var values: [String: TemplateValue] = [:]
        switch request["parameters"] {
        case nil, .null?: break
        case .object(let given)?:
            for entry in given.entries { values[entry.key] = entry.value }
        case let other?:
            throw Refusal(field: "openjd.parameters", message: "openjd.parameters: must be an object of job parameter values, not \(other.kind)")
        }
        let rules = try Self.rules(request["path_mapping_rules"])
        // Environment templates (environment-2023-09) applied around the job: entered before its own environments.
        let template: TemplateValue
        switch request["environments"] {
        case nil, .null?:
            template = given
        case .array(let environments)?:
            do {
                template = try EnvironmentTemplate.apply(environments, to: given)
            } catch {
                let field = error.field.hasPrefix("environments") ? "openjd.\(error.field)" : "openjd.template.\(error.field)"
                throw Refusal(field: field, message: "\(field): \(error.message)")
            }
        case let other?:
            throw Refusal(field: "openjd.environments", message: "openjd.environments: must be a list of environment templates, not \(other.kind)")
        }
        let conversion: OpenJDConversion
        do {
            conversion = try OpenJDConversion(template: template, values: values, pathMappingRules: rules)
        } catch {
            let values = error.field == "parameters" || error.field.hasPrefix("parameters.")
            let field = values ? "openjd.\(error.field)" : (error.field.isEmpty ? "openjd.template" : "openjd.template.\(error.field)")
            throw Refusal(field: field, message: "\(field): \(error.message)")
        }
        // The Paddock fields beside `openjd`, decoded as any job's (on a stand-in task), then checked
        // with the converted job by the one validation step.
        var submission = conversion.submission
        var extras = TemplateObject()
        for key in keys where key != "openjd" {
            if let value = object[key] { extras[key] = value }
        }
        if !extras.entries.isEmpty {
            extras["name"] = .string("openjd")
            extras["tasks"] = .array([.object(TemplateObject([("name", .string("t")), ("command", .array([.string("true")]))]))])
            let fields: WrittenJob
            do {
                fields = try WireJSON.decoder().decode(WrittenJob.self, from: Data(TemplateValue.object(extras).json.utf8))
            } catch {
                let refusal = WireJSON.describe(error)
                throw Refusal(field: refusal.field, message: refusal.message)  // said with its path already
            }
            submission.owner = fields.owner
            submission.priority = fields.priority ?? submission.priority
            submission.maxAttempts = fields.maxAttempts
            submission.after = fields.after
            submission.labels.merge(fields.labels) { _, theirs in theirs }
        }
        do {
            return (try submission.validated(), conversion.warnings)
        } catch {
            throw Refusal(field: error.field, message: error.description)
        }
    }

    /// The job's path mapping rules: `{"version": "pathmapping-1.0", "path_mapping_rules": [...]}`.
    static func rules(_ value: TemplateValue?) throws(Refusal) -> PathMappingRules? {
        guard let value, value != .null else { return nil }
        do {
            return try WireJSON.decoder().decode(PathMappingRules.self, from: Data(value.json.utf8))
        } catch {
            let refusal = WireJSON.describe(error)
            let field = "openjd.path_mapping_rules" + (refusal.field.map { "." + $0 } ?? "")
            throw Refusal(field: field, message: "\(field): \(refusal.message)")
        }
    }
}
