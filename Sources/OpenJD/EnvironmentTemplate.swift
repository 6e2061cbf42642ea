/// Open Job Description environment templates (`environment-2023-09`, 2023-09 §1.2): an environment
/// defined apart from any job (a studio's software set-up, a license check-out) that a submission
/// applies around a job, with the job parameters it needs.
///
/// Applied as the reference implementation applies them: the environments of the given templates
/// are entered first, in the order given, before the job's own `jobEnvironments`, and exited last;
/// the parameter definitions of all the templates and of the job are merged into one definition per
/// name (the same type everywhere; the narrowest constraints; the last default, the job's over an
/// environment's). Paddock does this by rewriting the job template: the environments become its
/// first job environments, and the merged definitions its parameter definitions.
public enum EnvironmentTemplate {
    public static let specificationVersion = "environment-2023-09"
    /// Environment templates one submission may apply.
    public static let limit = 16

    /// `job` with `environments` applied, or the first thing wrong, its field named from the
    /// submission (`environments[1].environment.script`, `environments[0].parameterDefinitions[2]`).
    public static func apply(_ environments: [TemplateValue], to job: TemplateValue) throws(OpenJDError) -> TemplateValue {
        guard !environments.isEmpty else { return job }
        let root = FieldPath("environments")
        guard environments.count <= limit else {
            throw root.error("at most \(limit) environment templates, not \(environments.count)")
        }
        var entered: [TemplateValue] = []
        var sourced: [(source: String, definition: TemplateObject)] = []
        for (i, document) in environments.enumerated() {
            let at = root.index(i)
            let (environment, definitions) = try check(document, at: at)
            let name = environment["name"].flatMap { if case .string(let text) = $0 { text } else { nil } } ?? "environment \(i)"
            entered.append(environment)
            sourced += definitions.map { ("EnvironmentTemplate for \(name)", $0) }
        }
        guard case .object(var template) = job else { return job }  // the job's own decoding says what is wrong
        if case .array(let own)? = template["parameterDefinitions"] {
            for item in own { if case .object(let definition) = item { sourced.append(("JobTemplate", definition)) } }
        }
        let merged = try merge(sourced)
        if !merged.isEmpty { template["parameterDefinitions"] = .array(merged.map(TemplateValue.object)) }
        var jobEnvironments = entered
        if case .array(let own)? = template["jobEnvironments"] { jobEnvironments += own }
        template["jobEnvironments"] = .array(jobEnvironments)
        return .object(template)
    }

    /// One environment template checked on its own, as the reference's `decode_environment_template`:
    /// its fields, its environment, its parameter definitions and the names its format strings use.
    /// The check runs the job template's own decoding on a job made of this environment alone, so
    /// both follow the same rules; its errors are said of the environment template.
    static func check(_ document: TemplateValue, at path: FieldPath) throws(OpenJDError) -> (environment: TemplateValue, definitions: [TemplateObject]) {
        let top = try ObjectReader(document, at: path, known: ["specificationVersion", "$schema", "parameterDefinitions", "environment", "extensions"])
        let version = try top.string("specificationVersion")
        guard version == specificationVersion else {
            throw path.key("specificationVersion").error("must be '\(specificationVersion)', not '\(version.prefix(64))'")
        }
        if top.has("extensions") {
            throw path.key("extensions").error("no extension of the specification is supported")
        }
        let environment = try top.value("environment")
        let definitions = try top.optionalList("parameterDefinitions", min: 1, max: 50) ?? []
        var alone = TemplateObject([
            ("specificationVersion", .string(JobTemplate.specificationVersion)),
            ("name", .string("environment")),
            ("jobEnvironments", .array([environment])),
            ("steps", .array([.object(TemplateObject([
                ("name", .string("step")),
                ("script", .object(TemplateObject([("actions", .object(TemplateObject([
                    ("onRun", .object(TemplateObject([("command", .string("true"))]))),
                ])))]))),
            ]))])),
        ])
        if !definitions.isEmpty { alone["parameterDefinitions"] = .array(definitions) }
        do {
            _ = try JobTemplate(.object(alone))
        } catch {
            throw OpenJDError(relocate(error.field, to: path), error.message)
        }
        return (environment, definitions.compactMap { if case .object(let object) = $0 { object } else { nil } })
    }

    /// A field of the stand-in job template, said of the environment template at `path`.
    static func relocate(_ field: String, to path: FieldPath) -> String {
        if field.hasPrefix("jobEnvironments[0]") {
            return path.key("environment").text + field.dropFirst("jobEnvironments[0]".count)
        }
        return field.isEmpty ? path.text : path.key(field).text
    }

    /// One definition per name, in the order names first appear (`merge_job_parameter_definitions`).
    static func merge(_ sourced: [(source: String, definition: TemplateObject)]) throws(OpenJDError) -> [TemplateObject] {
        var order: [String] = []
        var byName: [String: [(source: String, definition: TemplateObject)]] = [:]
        for entry in sourced {
            guard case .string(let name)? = entry.definition["name"] else { continue }
            if byName[name] == nil { order.append(name) }
            byName[name, default: []].append(entry)
        }
        var merged: [TemplateObject] = []
        for name in order {
            guard let definitions = byName[name] else { continue }
            merged.append(definitions.count == 1 ? definitions[0].definition : try mergeOne(name, definitions))
        }
        return merged
    }

    /// Several definitions of one parameter: the same type; allowed values that all allow; the
    /// largest minimum and the smallest maximum; the last default; PATH's objectType and dataFlow alike.
    static func mergeOne(_ name: String, _ definitions: [(source: String, definition: TemplateObject)]) throws(OpenJDError) -> TemplateObject {
        let at = FieldPath("parameterDefinitions").key(name)
        let type = definitions.last?.definition["type"] ?? .null
        for entry in definitions where entry.definition["type"] != type {
            throw at.error("Parameter type in '\(entry.source)' differs from expected type '\(text(type) ?? "?")'")
        }
        var result = TemplateObject([("name", .string(name)), ("type", type)])
        if let last = definitions.last(where: { $0.definition["default"] != nil }) { result["default"] = last.definition["default"] }
        var allowed: [TemplateValue]?
        for entry in definitions {
            guard case .array(let values)? = entry.definition["allowedValues"], !values.isEmpty else { continue }
            allowed = allowed.map { kept in kept.filter { value in values.contains { text($0) == text(value) } } } ?? values
        }
        if let allowed {
            guard !allowed.isEmpty else {
                throw at.error("The intersection of all allowedValues is empty. There are no values that can satisfy all constraints.")
            }
            result["allowedValues"] = .array(allowed)
        }
        let typeName = text(type) ?? ""
        let bounds = typeName == "STRING" || typeName == "PATH" ? ("minLength", "maxLength") : ("minValue", "maxValue")
        let number = { (value: TemplateValue) in Numbers.double(value) }
        let lows = definitions.compactMap { $0.definition[bounds.0] }
        let highs = definitions.compactMap { $0.definition[bounds.1] }
        let low = lows.max { (number($0) ?? -.infinity) < (number($1) ?? -.infinity) }
        let high = highs.min { (number($0) ?? .infinity) < (number($1) ?? .infinity) }
        if let low { result[bounds.0] = low }
        if let high { result[bounds.1] = high }
        if let low, let high, let a = number(low), let b = number(high), a > b {
            throw at.error("Merged constraint \(bounds.0) (\(text(low) ?? "")) <= \(bounds.1) (\(text(high) ?? "")) is not satisfyable.")
        }
        if typeName == "PATH" {
            let objectTypes = Set(definitions.map { $0.definition["objectType"].flatMap(text) ?? "DIRECTORY" })
            let dataFlows = Set(definitions.compactMap { $0.definition["dataFlow"].flatMap(text) })
            guard objectTypes.count == 1 else { throw at.error("Parameter objectTypes differ.") }
            guard dataFlows.count <= 1 else { throw at.error("Parameter dataFlows differ.") }
            if let objectType = definitions.first(where: { $0.definition["objectType"] != nil })?.definition["objectType"] {
                result["objectType"] = objectType
            }
            if let flow = dataFlows.first { result["dataFlow"] = .string(flow) }
        }
        return result
    }

    /// A scalar as text (`1` and `"1"` alike), for comparing allowed values and for messages.
    static func text(_ value: TemplateValue) -> String? {
        switch value {
        case .string(let text), .number(let text): text
        case .bool(let flag): flag ? "true" : "false"
        default: nil
        }
    }
}
