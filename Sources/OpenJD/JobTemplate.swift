/// An Open Job Description job template, specification `jobtemplate-2023-09`, as decoded and
/// checked against the schema. Format strings are kept as written; `Instantiation` resolves them.
public struct JobTemplate: Sendable {
    public static let specificationVersion = "jobtemplate-2023-09"

    public var name: String
    public var description: String?
    public var parameterDefinitions: [JobParameterDefinition]
    public var jobEnvironments: [Environment]
    public var steps: [StepTemplate]
}

public enum ParameterType: String, Sendable, CaseIterable {
    case int = "INT", float = "FLOAT", string = "STRING", path = "PATH"
}

public struct JobParameterDefinition: Sendable {
    public var name: String
    public var type: ParameterType
    /// The default, already checked against the constraints; as the reference renders it.
    public var defaultValue: String?
    public var allowedValues: [String]?
    public var minValue: Double?
    public var maxValue: Double?
    public var minLength: Int?
    public var maxLength: Int?
}

public struct StepTemplate: Sendable {
    public var name: String
    public var dependencies: [String]
    public var stepEnvironments: [Environment]
    public var hostRequirements: HostRequirements?
    public var parameterSpace: ParameterSpaceDefinition?
    public var script: StepScript
}

public struct HostRequirements: Sendable {
    public struct Amount: Sendable {
        public var name: String
        public var min: Double?
        public var max: Double?
    }
    public struct Attribute: Sendable {
        public var name: String
        /// Format strings.
        public var anyOf: [String]?
        public var allOf: [String]?
    }
    public var amounts: [Amount]
    public var attributes: [Attribute]
}

public struct ParameterSpaceDefinition: Sendable {
    public var taskParameterDefinitions: [TaskParameterDefinition]
    public var combination: String?
}

public struct TaskParameterDefinition: Sendable {
    public enum Range: Sendable {
        /// An `<IntRangeExpr>` format string (INT only).
        case expression(String)
        /// List items: numbers as written, or format strings.
        case list([TemplateValue])
    }
    public var name: String
    public var type: ParameterType
    public var range: Range
}

public struct StepScript: Sendable {
    public var onRun: Action
    public var embeddedFiles: [EmbeddedFile]
}

public struct Action: Sendable {
    public enum Cancelation: Sendable, Equatable {
        case terminate
        case notifyThenTerminate(seconds: Int?)
    }
    public var command: String
    public var args: [String]
    public var timeout: Int?
    public var cancelation: Cancelation?
}

/// `<Environment>` (2023-09 §4): entered before a task's action and exited after it.
public struct Environment: Sendable {
    public var name: String
    public var onEnter: Action?
    public var onExit: Action?
    public var embeddedFiles: [EmbeddedFile]
    /// Names and format strings, in document order.
    public var variables: [(name: String, value: String)]
}

extension Environment {
    var mentionsRulesFile: Bool {
        ([onEnter?.command, onExit?.command].compactMap { $0 } + (onEnter?.args ?? []) + (onExit?.args ?? [])
            + embeddedFiles.map(\.data) + variables.map(\.value)).contains { $0.contains("Session.PathMappingRulesFile") }
    }
}

public struct EmbeddedFile: Sendable {
    public var name: String
    public var filename: String?
    public var runnable: Bool
    public var data: String
}

// MARK: decoding

extension JobTemplate {
    /// Decodes and checks a template, the way the reference implementation's `decode_job_template` does.
    public init(_ document: TemplateValue) throws(OpenJDError) {
        let root = FieldPath()
        let top = try ObjectReader(document, at: root, known: [
            "specificationVersion", "$schema", "name", "description", "parameterDefinitions", "jobEnvironments", "steps",
            "extensions",
        ])
        let version = try top.string("specificationVersion")
        guard version == Self.specificationVersion else {
            throw root.key("specificationVersion").error("must be '\(Self.specificationVersion)', not '\(version.prefix(64))'")
        }
        if top.has("extensions") {
            throw root.key("extensions").error("no extension of the specification is supported")
        }
        name = try top.string("name")
        try FormatString.check(name, at: root.key("name"))
        guard !name.isEmpty else { throw root.key("name").error("must be at least 1 character") }
        description = try Self.description(top, at: root)

        let definitions = try top.optionalList("parameterDefinitions", min: 1, max: 50) ?? []
        var parameters: [JobParameterDefinition] = []
        for (i, item) in definitions.enumerated() {
            let definition = try JobParameterDefinition(item, at: root.key("parameterDefinitions").index(i))
            if parameters.contains(where: { $0.name == definition.name }) {
                throw root.key("parameterDefinitions").index(i).key("name")
                    .error("'\(definition.name)' is defined twice: parameter names must be unique")
            }
            parameters.append(definition)
        }
        parameterDefinitions = parameters

        let jobEnvironments = try Self.environments(top.optionalList("jobEnvironments") ?? [], at: root.key("jobEnvironments"))
        self.jobEnvironments = jobEnvironments

        let stepItems = try top.list("steps", min: 1)
        var steps: [StepTemplate] = []
        for (i, item) in stepItems.enumerated() {
            let step = try StepTemplate(item, at: root.key("steps").index(i))
            if steps.contains(where: { $0.name == step.name }) {
                throw root.key("steps").index(i).key("name").error("'\(step.name)' is used twice: step names must be unique")
            }
            if let clash = step.stepEnvironments.first(where: { env in jobEnvironments.contains { $0.name == env.name } }) {
                throw root.key("steps").index(i).key("stepEnvironments")
                    .error("environment '\(clash.name)' has the name of a job environment: names must be unique")
            }
            steps.append(step)
        }
        for (i, step) in steps.enumerated() {
            for (j, target) in step.dependencies.enumerated() {
                let at = root.key("steps").index(i).key("dependencies").index(j).key("dependsOn")
                guard target != step.name else { throw at.error("a step cannot depend on itself") }
                guard steps.contains(where: { $0.name == target }) else {
                    throw at.error("'\(target.prefix(64))' is not the name of a step of this template")
                }
            }
        }
        self.steps = steps
        try Self.checkAcyclic(steps, at: root.key("steps"))
        try checkReferences()
    }

    /// Every `{{ name }}` refers to a value that exists where it is written (2023-09 §7.3.1), as the
    /// reference implementation checks when it decodes a template.
    func checkReferences() throws(OpenJDError) {
        let root = FieldPath()
        var template: Set<String> = []
        for parameter in parameterDefinitions {
            template.insert("RawParam.\(parameter.name)")
            if parameter.type != .path { template.insert("Param.\(parameter.name)") }
        }
        try FormatString.checkNames(name, at: root.key("name"), allowed: template)
        var hostScope = template
        for parameter in parameterDefinitions { hostScope.insert("Param.\(parameter.name)") }
        hostScope.formUnion(["Session.WorkingDirectory", "Session.HasPathMappingRules", "Session.PathMappingRulesFile"])
        func checkEnvironments(_ environments: [Environment], at path: FieldPath) throws(OpenJDError) {
            for (i, environment) in environments.enumerated() {
                let at = path.index(i)
                var scope = hostScope
                for file in environment.embeddedFiles { scope.insert("Env.File.\(file.name)") }
                for (key, action) in [("onEnter", environment.onEnter), ("onExit", environment.onExit)] {
                    guard let action else { continue }
                    let base = at.key("script").key("actions").key(key)
                    try FormatString.checkNames(action.command, at: base.key("command"), allowed: scope)
                    for (j, arg) in action.args.enumerated() {
                        try FormatString.checkNames(arg, at: base.key("args").index(j), allowed: scope)
                    }
                }
                for (j, file) in environment.embeddedFiles.enumerated() {
                    try FormatString.checkNames(file.data, at: at.key("script").key("embeddedFiles").index(j).key("data"), allowed: scope)
                }
                for variable in environment.variables {
                    try FormatString.checkNames(variable.value, at: at.key("variables").key(variable.name), allowed: scope)
                }
            }
        }
        try checkEnvironments(jobEnvironments, at: root.key("jobEnvironments"))
        for (i, step) in steps.enumerated() {
            try checkEnvironments(step.stepEnvironments, at: root.key("steps").index(i).key("stepEnvironments"))
        }
        for (i, step) in steps.enumerated() {
            let at = root.key("steps").index(i)
            for (j, definition) in (step.parameterSpace?.taskParameterDefinitions ?? []).enumerated() {
                let range = at.key("parameterSpace").key("taskParameterDefinitions").index(j).key("range")
                switch definition.range {
                case .expression(let text):
                    try FormatString.checkNames(text, at: range, allowed: template)
                case .list(let items):
                    for (k, item) in items.enumerated() {
                        if case .string(let text) = item { try FormatString.checkNames(text, at: range.index(k), allowed: template) }
                    }
                }
            }
            for (j, attribute) in (step.hostRequirements?.attributes ?? []).enumerated() {
                let base = at.key("hostRequirements").key("attributes").index(j)
                for (key, values) in [("anyOf", attribute.anyOf), ("allOf", attribute.allOf)] {
                    for (k, text) in (values ?? []).enumerated() {
                        try FormatString.checkNames(text, at: base.key(key).index(k), allowed: template)
                    }
                }
            }
            var script = template
            for parameter in parameterDefinitions { script.insert("Param.\(parameter.name)") }
            for definition in step.parameterSpace?.taskParameterDefinitions ?? [] {
                script.insert("Task.Param.\(definition.name)")
                script.insert("Task.RawParam.\(definition.name)")
            }
            for file in step.script.embeddedFiles { script.insert("Task.File.\(file.name)") }
            script.formUnion(["Session.WorkingDirectory", "Session.HasPathMappingRules", "Session.PathMappingRulesFile"])
            let action = at.key("script").key("actions").key("onRun")
            try FormatString.checkNames(step.script.onRun.command, at: action.key("command"), allowed: script)
            for (j, arg) in step.script.onRun.args.enumerated() {
                try FormatString.checkNames(arg, at: action.key("args").index(j), allowed: script)
            }
            for (j, file) in step.script.embeddedFiles.enumerated() {
                try FormatString.checkNames(file.data, at: at.key("script").key("embeddedFiles").index(j).key("data"), allowed: script)
            }
        }
    }

    static func description(_ reader: ObjectReader, at path: FieldPath) throws(OpenJDError) -> String? {
        guard let text = try reader.optionalString("description") else { return nil }
        guard (1...2048).contains(text.count) else { throw path.key("description").error("must be 1 to 2048 characters") }
        return text
    }

    static func environments(_ items: [TemplateValue], at path: FieldPath) throws(OpenJDError) -> [Environment] {
        var environments: [Environment] = []
        for (i, item) in items.enumerated() {
            let environment = try Environment(item, at: path.index(i))
            guard !environments.contains(where: { $0.name == environment.name }) else {
                throw path.index(i).key("name").error("'\(environment.name)' is used twice: environment names must be unique")
            }
            environments.append(environment)
        }
        return environments
    }

    /// Kahn's algorithm over the steps' dependencies.
    static func checkAcyclic(_ steps: [StepTemplate], at path: FieldPath) throws(OpenJDError) {
        var waiting = steps.map { Set($0.dependencies).count }
        var ready = steps.indices.filter { waiting[$0] == 0 }
        var done = 0
        while let next = ready.popLast() {
            done += 1
            for (i, step) in steps.enumerated() where step.dependencies.contains(steps[next].name) {
                waiting[i] -= 1
                if waiting[i] == 0 { ready.append(i) }
            }
        }
        if done < steps.count {
            let stuck = steps.indices.filter { waiting[$0] > 0 }.map { "'\(steps[$0].name)'" }
            throw path.error("the step dependencies form a cycle (through \(stuck.prefix(5).joined(separator: ", ")))")
        }
    }

    /// Decodes a template from JSON text.
    public init(json: some Collection<UInt8>) throws(OpenJDError) {
        try self.init(try TemplateValue(json: json))
    }
}

extension JobParameterDefinition {
    init(_ value: TemplateValue, at path: FieldPath) throws(OpenJDError) {
        let head = try ObjectReader(value, at: path, known: ["name", "type", "description", "default", "allowedValues",
            "minValue", "maxValue", "minLength", "maxLength", "objectType", "dataFlow", "userInterface"])
        name = try head.string("name")
        guard name.isOpenJDIdentifier else {
            throw path.key("name").error("must be an identifier: latin letters, digits and '_', not starting with a digit, at most 64 characters")
        }
        let typeText = try head.string("type")
        guard let type = ParameterType(rawValue: typeText) else {
            throw path.key("type").error("must be one of INT, FLOAT, STRING, PATH, not '\(typeText.prefix(32))'")
        }
        self.type = type
        let known: Set<String> = switch type {
        case .int, .float: ["name", "type", "description", "default", "allowedValues", "minValue", "maxValue", "userInterface"]
        case .string: ["name", "type", "description", "default", "allowedValues", "minLength", "maxLength", "userInterface"]
        case .path: ["name", "type", "description", "default", "allowedValues", "minLength", "maxLength", "objectType",
                     "dataFlow", "userInterface"]
        }
        let reader = try ObjectReader(value, at: path, known: known)
        _ = try JobTemplate.description(reader, at: path)
        if reader.has("objectType"), !["FILE", "DIRECTORY"].contains(try reader.string("objectType")) {
            throw path.key("objectType").error("must be FILE or DIRECTORY")
        }
        if reader.has("dataFlow"), !["NONE", "IN", "OUT", "INOUT"].contains(try reader.string("dataFlow")) {
            throw path.key("dataFlow").error("must be NONE, IN, OUT or INOUT")
        }
        if reader.has("userInterface") { _ = try reader.value("userInterface") }

        switch type {
        case .int:
            minValue = try reader.integer("minValue").map(Double.init)
            maxValue = try reader.integer("maxValue").map(Double.init)
        case .float:
            minValue = try reader.number("minValue")
            maxValue = try reader.number("maxValue")
        case .string, .path:
            minValue = nil
            maxValue = nil
        }
        if let low = minValue, let high = maxValue, low > high {
            throw path.key("minValue").error("must be less than or equal to maxValue")
        }
        minLength = try reader.integer("minLength", strings: false)
        maxLength = try reader.integer("maxLength", strings: false)
        if let low = minLength, low < 1 { throw path.key("minLength").error("must be at least 1") }
        if let high = maxLength, high < 1 { throw path.key("maxLength").error("must be at least 1") }
        if let low = minLength, let high = maxLength, low > high {
            throw path.key("minLength").error("must be less than or equal to maxLength")
        }
        allowedValues = nil
        defaultValue = nil
        if let items = try reader.optionalList("allowedValues", min: 1) {
            var allowed: [String] = []
            for (i, item) in items.enumerated() {
                allowed.append(try check(item, at: path.key("allowedValues").index(i), checkAllowed: false))
            }
            allowedValues = allowed
        }
        if let value = reader.object["default"] {
            defaultValue = try check(value, at: path.key("default"))
        }
    }

    /// Checks a value (from the template or from the submitter) against this definition; returns it
    /// as text the way the reference implementation renders it.
    /// A value the submitter gives as text keeps that text (as in the reference implementation,
    /// `+5` stays `+5`); a default in the template is rendered from the number it reads as.
    func check(_ value: TemplateValue, at path: FieldPath, checkAllowed: Bool = true,
               given: Bool = false) throws(OpenJDError) -> String {
        let text: String
        switch type {
        case .int:
            guard let number = Numbers.integer(value) else {
                throw path.error("value for parameter \(name) must be an integer or an integer string")
            }
            if given, case .string(let written) = value { text = written } else { text = String(number) }
            try checkRange(Double(number), text, at: path)
        case .float:
            guard let number = Numbers.double(value) else {
                throw path.error("value for parameter \(name) must be a floating point number or a string of one")
            }
            switch value {
            case .number(let written): text = Numbers.render(number: written)
            case .string(let written): text = given ? written : written.trimmingSpaces
            default: text = "\(number)"
            }
            try checkRange(number, text, at: path)
        case .string, .path:
            guard case .string(let string) = value else {
                throw path.error("value for parameter \(name) must be a string, not \(value.kind)")
            }
            text = string
            if let low = minLength, string.count < low {
                throw path.error("value for parameter \(name) must be at least \(low) characters long")
            }
            if let high = maxLength, string.count > high {
                throw path.error("value for parameter \(name) must be at most \(high) characters long")
            }
        }
        if checkAllowed, let allowed = allowedValues {
            let matches: Bool = switch type {
            case .int, .float: allowed.contains { Double($0) == Double(text) }
            case .string, .path: allowed.contains(text)
            }
            guard matches else {
                throw path.error("value (\(text.prefix(128))) for parameter \(name) must be one of the allowed values: "
                    + allowed.joined(separator: ", ").prefix(512))
            }
        }
        return text
    }

    private func checkRange(_ number: Double, _ text: String, at path: FieldPath) throws(OpenJDError) {
        if let low = minValue, number < low {
            throw path.error("value (\(text)) for parameter \(name) must be at least the minValue, \(Self.show(low, type))")
        }
        if let high = maxValue, number > high {
            throw path.error("value (\(text)) for parameter \(name) must be at most the maxValue, \(Self.show(high, type))")
        }
    }

    static func show(_ number: Double, _ type: ParameterType) -> String {
        type == .int ? String(Int(number)) : "\(number)"
    }
}

extension StepTemplate {
    init(_ value: TemplateValue, at path: FieldPath) throws(OpenJDError) {
        let reader = try ObjectReader(value, at: path, known: ["name", "description", "dependencies", "stepEnvironments",
                                                               "hostRequirements", "parameterSpace", "script"])
        name = try reader.string("name")
        guard (1...64).contains(name.count), !name.hasControlCharacter else {
            throw path.key("name").error("must be 1 to 64 characters, no control characters")
        }
        _ = try JobTemplate.description(reader, at: path)
        var dependencies: [String] = []
        for (i, item) in (try reader.optionalList("dependencies") ?? []).enumerated() {
            let dependency = try ObjectReader(item, at: path.key("dependencies").index(i), known: ["dependsOn"])
            let target = try dependency.string("dependsOn")
            guard !dependencies.contains(target) else {
                throw path.key("dependencies").index(i).key("dependsOn").error("'\(target)' is listed twice")
            }
            dependencies.append(target)
        }
        self.dependencies = dependencies
        stepEnvironments = try JobTemplate.environments(reader.optionalList("stepEnvironments") ?? [],
                                                        at: path.key("stepEnvironments"))
        hostRequirements = try reader.has("hostRequirements")
            ? HostRequirements(reader.value("hostRequirements"), at: path.key("hostRequirements")) : nil
        parameterSpace = try reader.has("parameterSpace")
            ? ParameterSpaceDefinition(reader.value("parameterSpace"), at: path.key("parameterSpace")) : nil
        script = try StepScript(reader.value("script"), at: path.key("script"))
    }
}

extension HostRequirements {
    init(_ value: TemplateValue, at path: FieldPath) throws(OpenJDError) {
        let reader = try ObjectReader(value, at: path, known: ["amounts", "attributes"])
        let amountItems = try reader.optionalList("amounts") ?? []
        let attributeItems = try reader.optionalList("attributes") ?? []
        guard !amountItems.isEmpty || !attributeItems.isEmpty else {
            throw path.error("give at least one of 'amounts' or 'attributes'")
        }
        guard amountItems.count + attributeItems.count <= 50 else {
            throw path.error("at most 50 amounts and attributes together")
        }
        amounts = []
        for (i, item) in amountItems.enumerated() {
            let at = path.key("amounts").index(i)
            let amount = try ObjectReader(item, at: at, known: ["name", "min", "max"])
            let name = try amount.string("name")
            guard Self.isCapabilityName(name, kind: "amount") else {
                throw at.key("name").error("must look like amount.<identifier>[.<identifier>]* (at most 100 characters)")
            }
            let min = try amount.number("min", strings: false)
            let max = try amount.number("max", strings: false)
            guard min != nil || max != nil else { throw at.error("give at least one of 'min' or 'max'") }
            if let min, min < 0 { throw at.key("min").error("must be zero or more") }
            if let max, max <= 0 { throw at.key("max").error("must be more than zero") }
            if let min, let max, min > max { throw at.key("min").error("must be less than or equal to max") }
            amounts.append(Amount(name: name, min: min, max: max))
        }
        attributes = []
        for (i, item) in attributeItems.enumerated() {
            let at = path.key("attributes").index(i)
            let attribute = try ObjectReader(item, at: at, known: ["name", "anyOf", "allOf"])
            let name = try attribute.string("name")
            guard Self.isCapabilityName(name, kind: "attr") else {
                throw at.key("name").error("must look like attr.<identifier>[.<identifier>]* (at most 100 characters)")
            }
            func values(_ key: String) throws(OpenJDError) -> [String]? {
                guard let items = try attribute.optionalList(key, min: 1, max: 50) else { return nil }
                var out: [String] = []
                for (j, item) in items.enumerated() {
                    guard case .string(let text) = item, !text.isEmpty else {
                        throw at.key(key).index(j).error("must be a non-empty string")
                    }
                    try FormatString.check(text, at: at.key(key).index(j))
                    out.append(text)
                }
                return out
            }
            let anyOf = try values("anyOf")
            let allOf = try values("allOf")
            guard anyOf != nil || allOf != nil else { throw at.error("give at least one of 'anyOf' or 'allOf'") }
            attributes.append(Attribute(name: name, anyOf: anyOf, allOf: allOf))
        }
    }

    /// `[<Identifier>:]amount.<Identifier>[.<Identifier>]*` (or `attr.`), compared without case.
    static func isCapabilityName(_ name: String, kind: String) -> Bool {
        guard (1...100).contains(name.count) else { return false }
        var rest = Substring(name)
        if let colon = rest.firstIndex(of: ":") {
            guard String(rest[..<colon]).isOpenJDIdentifier else { return false }
            rest = rest[rest.index(after: colon)...]
        }
        let parts = rest.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        return parts.count >= 2 && parts[0].lowercased() == kind && parts.dropFirst().allSatisfy(\.isOpenJDIdentifier)
    }
}

extension ParameterSpaceDefinition {
    init(_ value: TemplateValue, at path: FieldPath) throws(OpenJDError) {
        let reader = try ObjectReader(value, at: path, known: ["taskParameterDefinitions", "combination"])
        let items = try reader.list("taskParameterDefinitions", min: 1, max: 16)
        var definitions: [TaskParameterDefinition] = []
        for (i, item) in items.enumerated() {
            let at = path.key("taskParameterDefinitions").index(i)
            let definition = try TaskParameterDefinition(item, at: at)
            guard !definitions.contains(where: { $0.name == definition.name }) else {
                throw at.key("name").error("'\(definition.name)' is defined twice: task parameter names must be unique")
            }
            definitions.append(definition)
        }
        taskParameterDefinitions = definitions
        combination = try reader.optionalString("combination")
        if let combination {
            guard (1...1280).contains(combination.count) else {
                throw path.key("combination").error("must be 1 to 1280 characters")
            }
            // Parsed here so that a bad expression is a template error, as in the reference.
            _ = try CombinationExpression(combination, parameters: definitions.map(\.name), at: path.key("combination"))
        }
    }
}

extension TaskParameterDefinition {
    init(_ value: TemplateValue, at path: FieldPath) throws(OpenJDError) {
        let reader = try ObjectReader(value, at: path, known: ["name", "type", "range"])
        name = try reader.string("name")
        guard name.isOpenJDIdentifier else {
            throw path.key("name").error("must be an identifier: latin letters, digits and '_', not starting with a digit, at most 64 characters")
        }
        let typeText = try reader.string("type")
        guard let type = ParameterType(rawValue: typeText) else {
            throw path.key("type").error("must be one of INT, FLOAT, STRING, PATH, not '\(typeText.prefix(32))'")
        }
        self.type = type
        let rangeValue = try reader.value("range")
        let at = path.key("range")
        switch rangeValue {
        case .string(let expression) where type == .int:
            try FormatString.check(expression, at: at)
            if !FormatString.hasReferences(expression) {
                _ = try IntRangeExpression(expression, at: at)
            }
            range = .expression(expression)
        case .array(let items):
            guard !items.isEmpty else { throw at.error("must have at least 1 item") }
            guard items.count <= 1024 else { throw at.error("must have at most 1024 items, not \(items.count)") }
            for (i, item) in items.enumerated() {
                switch (type, item) {
                case (.int, .number(let text)):
                    guard Int(text) != nil else { throw at.index(i).error("must be an integer") }
                case (.float, .number(let text)):
                    guard Double(text)?.isFinite == true else { throw at.index(i).error("must be a number") }
                case (_, .string(let text)):
                    try FormatString.check(text, at: at.index(i))
                    if !FormatString.hasReferences(text) {
                        if type == .int, Numbers.integer(text) == nil {
                            throw at.index(i).error("'\(text.prefix(64))' is not an integer")
                        }
                        if type == .float, Numbers.double(text) == nil {
                            throw at.index(i).error("'\(text.prefix(64))' is not a floating point number")
                        }
                        if type == .string || type == .path, !(1...1024).contains(text.count) {
                            throw at.index(i).error("must be 1 to 1024 characters")
                        }
                    }
                default:
                    throw at.index(i).error("a \(type.rawValue) range item cannot be \(item.kind)")
                }
            }
            range = .list(items)
        default:
            throw at.error(type == .int ? "must be a list or a range expression string" : "must be a list")
        }
    }
}

extension StepScript {
    init(_ value: TemplateValue, at path: FieldPath) throws(OpenJDError) {
        let reader = try ObjectReader(value, at: path, known: ["actions", "embeddedFiles"])
        let actions = try ObjectReader(try reader.value("actions"), at: path.key("actions"), known: ["onRun"])
        onRun = try Action(actions.value("onRun"), at: path.key("actions").key("onRun"))
        var files: [EmbeddedFile] = []
        for (i, item) in (try reader.optionalList("embeddedFiles") ?? []).enumerated() {
            let file = try EmbeddedFile(item, at: path.key("embeddedFiles").index(i))
            guard !files.contains(where: { $0.name == file.name }) else {
                throw path.key("embeddedFiles").index(i).key("name").error("'\(file.name)' is used twice: embedded file names must be unique")
            }
            files.append(file)
        }
        embeddedFiles = files
    }
}

extension Action {
    init(_ value: TemplateValue, at path: FieldPath) throws(OpenJDError) {
        let reader = try ObjectReader(value, at: path, known: ["command", "args", "timeout", "cancelation"])
        command = try reader.string("command")
        guard !command.isEmpty else { throw path.key("command").error("must be at least 1 character") }
        try FormatString.check(command, at: path.key("command"))
        var args: [String] = []
        for (i, item) in (try reader.optionalList("args", min: 0) ?? []).enumerated() {
            guard case .string(let text) = item else { throw path.key("args").index(i).error("must be a string, not \(item.kind)") }
            try FormatString.check(text, at: path.key("args").index(i))
            args.append(text)
        }
        self.args = args
        timeout = try reader.integer("timeout", strings: false)
        if let timeout, timeout <= 0 { throw path.key("timeout").error("must be a positive whole number of seconds") }
        if reader.has("cancelation") {
            let at = path.key("cancelation")
            let head = try ObjectReader(try reader.value("cancelation"), at: at, known: ["mode", "notifyPeriodInSeconds"])
            switch try head.string("mode") {
            case "TERMINATE":
                _ = try ObjectReader(try reader.value("cancelation"), at: at, known: ["mode"])
                cancelation = .terminate
            case "NOTIFY_THEN_TERMINATE":
                let seconds = try head.integer("notifyPeriodInSeconds", strings: false)
                if let seconds, !(1...600).contains(seconds) {
                    throw at.key("notifyPeriodInSeconds").error("must be between 1 and 600")
                }
                cancelation = .notifyThenTerminate(seconds: seconds)
            default:
                throw at.key("mode").error("must be TERMINATE or NOTIFY_THEN_TERMINATE")
            }
        } else {
            cancelation = nil
        }
    }
}

extension Environment {
    init(_ value: TemplateValue, at path: FieldPath) throws(OpenJDError) {
        let reader = try ObjectReader(value, at: path, known: ["name", "description", "script", "variables"])
        name = try reader.string("name")
        guard (1...64).contains(name.count), !name.hasControlCharacter else {
            throw path.key("name").error("must be 1 to 64 characters, no control characters")
        }
        _ = try JobTemplate.description(reader, at: path)
        guard reader.has("script") || reader.has("variables") else {
            throw path.error("an environment needs a 'script' or 'variables'")
        }
        onEnter = nil
        onExit = nil
        embeddedFiles = []
        if reader.has("script") {
            let at = path.key("script")
            let script = try ObjectReader(try reader.value("script"), at: at, known: ["actions", "embeddedFiles"])
            let actions = try ObjectReader(try script.value("actions"), at: at.key("actions"), known: ["onEnter", "onExit"])
            guard actions.has("onEnter") || actions.has("onExit") else {
                throw at.key("actions").error("give at least one of 'onEnter' or 'onExit'")
            }
            onEnter = try actions.has("onEnter") ? Action(actions.value("onEnter"), at: at.key("actions").key("onEnter")) : nil
            onExit = try actions.has("onExit") ? Action(actions.value("onExit"), at: at.key("actions").key("onExit")) : nil
            for (i, item) in (try script.optionalList("embeddedFiles") ?? []).enumerated() {
                let file = try EmbeddedFile(item, at: at.key("embeddedFiles").index(i))
                guard !embeddedFiles.contains(where: { $0.name == file.name }) else {
                    throw at.key("embeddedFiles").index(i).key("name").error("'\(file.name)' is used twice: embedded file names must be unique")
                }
                embeddedFiles.append(file)
            }
        }
        variables = []
        if reader.has("variables") {
            let at = path.key("variables")
            guard case .object(let object) = try reader.value("variables"), !object.entries.isEmpty else {
                throw at.error("must be an object of at least one variable")
            }
            for entry in object.entries {
                guard (1...256).contains(entry.key.count), entry.key.isOpenJDIdentifier || entry.key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }),
                      let first = entry.key.first, !first.isNumber else {
                    throw at.key(entry.key).error("must be a variable name: letters, digits and '_', not starting with a digit")
                }
                guard case .string(let text) = entry.value else { throw at.key(entry.key).error("must be a string, not \(entry.value.kind)") }
                try FormatString.check(text, at: at.key(entry.key))
                variables.append((entry.key, text))
            }
        }
    }
}

extension EmbeddedFile {
    init(_ value: TemplateValue, at path: FieldPath) throws(OpenJDError) {
        let reader = try ObjectReader(value, at: path, known: ["name", "type", "filename", "runnable", "data"])
        name = try reader.string("name")
        guard name.isOpenJDIdentifier else {
            throw path.key("name").error("must be an identifier: latin letters, digits and '_', not starting with a digit, at most 64 characters")
        }
        guard try reader.string("type") == "TEXT" else { throw path.key("type").error("must be TEXT") }
        filename = try reader.optionalString("filename")
        if let filename {
            guard (1...64).contains(filename.count), !filename.contains("/"), !filename.contains("\0"),
                  filename != ".", filename != ".." else {
                throw path.key("filename").error("must be a file's base name (no '/'), 1 to 64 characters")
            }
        }
        runnable = try reader.bool("runnable") ?? false
        data = try reader.string("data")
        guard !data.isEmpty else { throw path.key("data").error("must be at least 1 character") }
        try FormatString.check(data, at: path.key("data"))
    }
}
