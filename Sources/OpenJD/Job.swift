/// A job made from a template and its parameter values: the job parameters checked and
/// completed with defaults, the job's name resolved, and each step's parameter space expanded
/// into its tasks (2023-09, "How Jobs Are Constructed").
public struct OpenJDJob: Sendable {
    public struct JobParameter: Sendable, Equatable {
        public var type: ParameterType
        public var value: String
    }
    public struct TaskParameter: Sendable, Equatable {
        public var name: String
        public var type: ParameterType
        public var value: String
    }
    public struct Step: Sendable {
        public var template: StepTemplate
        /// One element per task, each the task's parameters in definition order. A step without
        /// a parameter space has one task with none.
        public var tasks: [[TaskParameter]]
        /// Host requirement attribute values, resolved.
        public var attributes: [(name: String, anyOf: [String]?, allOf: [String]?)]
    }

    public var template: JobTemplate
    public var name: String
    public var parameters: [String: JobParameter]
    public var steps: [Step]

    /// Checks `values` against the template's parameter definitions (unknown names, missing values,
    /// types, bounds, allowed values), then expands every step. `taskLimit` bounds the tasks of the
    /// whole job; more is an error naming the figure.
    public init(template: JobTemplate, values: [String: TemplateValue], taskLimit: Int) throws(OpenJDError) {
        self.template = template
        let definitions = template.parameterDefinitions
        let root = FieldPath("parameters")
        if let unknown = values.keys.sorted().first(where: { name in !definitions.contains { $0.name == name } }) {
            throw root.key(unknown).error("job parameter \(unknown) is not defined by the template")
        }
        var parameters: [String: JobParameter] = [:]
        var missing: [String] = []
        for definition in definitions {
            if let given = values[definition.name] {
                parameters[definition.name] = JobParameter(
                    type: definition.type, value: try definition.check(given, at: root.key(definition.name), given: true))
            } else if let value = definition.defaultValue {
                parameters[definition.name] = JobParameter(type: definition.type, value: value)
            } else {
                missing.append(definition.name)
            }
        }
        guard missing.isEmpty else {
            throw root.error("values missing for required job parameters: \(missing.sorted().joined(separator: ", "))")
        }
        self.parameters = parameters

        // Template scope: Param.* (not PATH: those are path-mapped on the host) and RawParam.*.
        var symbols = SymbolTable()
        symbols.scopeNote = " (the template scope has Param.* and RawParam.* only)"
        for (name, parameter) in parameters {
            symbols["RawParam.\(name)"] = ResolvedString([.text(parameter.value)])
            if parameter.type != .path { symbols["Param.\(name)"] = ResolvedString([.text(parameter.value)]) }
        }
        let jobName = try symbols.resolvePlain(template.name, at: FieldPath("name"))
        guard (1...128).contains(jobName.count), !jobName.hasControlCharacter else {
            throw FieldPath("name").error("the resolved job name must be 1 to 128 characters with no control characters")
        }
        name = jobName

        var steps: [Step] = []
        var total = 0
        for (i, step) in template.steps.enumerated() {
            let at = FieldPath("steps").index(i)
            let tasks = try Self.expand(step.parameterSpace, symbols: symbols, at: at.key("parameterSpace"),
                                        limit: TaskLimit(total: taskLimit, before: total))
            total += tasks.count
            var attributes: [(String, [String]?, [String]?)] = []
            for (j, attribute) in (step.hostRequirements?.attributes ?? []).enumerated() {
                let base = at.key("hostRequirements").key("attributes").index(j)
                func resolve(_ list: [String]?, _ key: String) throws(OpenJDError) -> [String]? {
                    guard let list else { return nil }
                    var out: [String] = []
                    for (k, text) in list.enumerated() {
                        let value = try symbols.resolvePlain(text, at: base.key(key).index(k))
                        guard Self.isAttributeValue(value) else {
                            throw base.key(key).index(k).error(
                                "'\(value.prefix(100))' must be latin letters, digits, '_' and '-', starting with a letter or '_' (at most 100)")
                        }
                        out.append(value)
                    }
                    return out
                }
                attributes.append((attribute.name, try resolve(attribute.anyOf, "anyOf"), try resolve(attribute.allOf, "allOf")))
            }
            steps.append(Step(template: step, tasks: tasks, attributes: attributes))
        }
        self.steps = steps
    }

    static func isAttributeValue(_ value: String) -> Bool {
        guard let first = value.unicodeScalars.first, value.count <= 100 else { return false }
        let letter = { (s: Unicode.Scalar) in ("a"..."z").contains(s) || ("A"..."Z").contains(s) || s == "_" }
        return letter(first) && value.unicodeScalars.allSatisfy { letter($0) || ("0"..."9").contains($0) || $0 == "-" }
    }

    /// The values each task parameter takes, then their combination.
    /// Paddock's limit of tasks per job, and how many the steps before this one made.
    struct TaskLimit {
        var total: Int
        var before: Int
        var left: Int { max(0, total - before) }

        func exceeded(by count: Int, what: String) -> String {
            before == 0
                ? "\(what) \(count) tasks, more than Paddock's limit of \(total) tasks per job"
                : "\(what) \(count) tasks; with the \(before) of the steps before it the job would have more than "
                    + "Paddock's limit of \(total) tasks per job"
        }
    }

    static func expand(_ space: ParameterSpaceDefinition?, symbols: SymbolTable, at path: FieldPath,
                       limit: TaskLimit) throws(OpenJDError) -> [[TaskParameter]] {
        guard let space else {
            guard limit.left >= 1 else { throw path.error(limit.exceeded(by: 1, what: "this step has")) }
            return [[]]
        }
        var values: [String: [TaskParameter]] = [:]
        for (i, definition) in space.taskParameterDefinitions.enumerated() {
            values[definition.name] = try rangeValues(definition, symbols: symbols, limit: limit,
                                                      at: path.key("taskParameterDefinitions").index(i).key("range"))
        }
        let names = space.taskParameterDefinitions.map(\.name)
        let expression = try space.combination.map { text throws(OpenJDError) in
            try CombinationExpression(text, parameters: names, at: path.key("combination"))
        } ?? (names.count == 1 ? .parameter(names[0]) : .product(names.map { .parameter($0) }))

        let count = try size(expression, values, at: path.key("combination"))
        guard count <= limit.left else {
            throw path.error(limit.exceeded(by: count, what: "this step's parameter space has"))
        }
        var tasks: [[TaskParameter]] = []
        tasks.reserveCapacity(count)
        for element in elements(expression, values) {
            // In definition order, as the task's parameters are listed.
            tasks.append(names.compactMap { name in element.first { $0.name == name } })
        }
        return tasks
    }

    /// The number of elements of an expression; associations must agree in length.
    static func size(_ expression: CombinationExpression, _ values: [String: [TaskParameter]],
                     at path: FieldPath) throws(OpenJDError) -> Int {
        switch expression {
        case .parameter(let name):
            return values[name]?.count ?? 0
        case .product(let items):
            var product = 1
            for item in items {
                let (result, overflow) = product.multipliedReportingOverflow(by: try size(item, values, at: path))
                product = overflow || result > Int(Int32.max) ? Int(Int32.max) : result
            }
            return product
        case .association(let items):
            var sizes: [Int] = []
            for item in items { sizes.append(try size(item, values, at: path)) }
            guard let first = sizes.first, sizes.allSatisfy({ $0 == first }) else {
                let shown = zip(items, sizes).map { "\(describe($0)) has \($1)" }.joined(separator: ", ")
                throw path.error("the expressions of an association must have the same number of values (\(shown))")
            }
            return first
        }
    }

    static func describe(_ expression: CombinationExpression) -> String {
        switch expression {
        case .parameter(let name): name
        case .product(let items): items.map(describe).joined(separator: " * ")
        case .association(let items): "(" + items.map(describe).joined(separator: ", ") + ")"
        }
    }

    static func elements(_ expression: CombinationExpression, _ values: [String: [TaskParameter]]) -> [[TaskParameter]] {
        switch expression {
        case .parameter(let name):
            return (values[name] ?? []).map { [$0] }
        case .product(let items):
            var result: [[TaskParameter]] = [[]]
            for item in items {
                let next = elements(item, values)
                result = result.flatMap { prefix in next.map { prefix + $0 } }
            }
            return result
        case .association(let items):
            let lists = items.map { elements($0, values) }
            let count = lists.first?.count ?? 0
            return (0..<count).map { i in lists.flatMap { $0[i] } }
        }
    }

    /// The values of one task parameter, format strings resolved in the template scope.
    static func rangeValues(_ definition: TaskParameterDefinition, symbols: SymbolTable, limit: TaskLimit,
                            at path: FieldPath) throws(OpenJDError) -> [TaskParameter] {
        let make = { (value: String) in TaskParameter(name: definition.name, type: definition.type, value: value) }
        switch definition.range {
        case .expression(let text):
            let resolved = try symbols.resolvePlain(text, at: path)
            let expression = try IntRangeExpression(resolved, at: path)
            guard expression.count <= limit.left else {
                throw path.error(limit.exceeded(by: expression.count, what: "the range makes"))
            }
            return expression.values.map { make(String($0)) }
        case .list(let items):
            var out: [TaskParameter] = []
            for (i, item) in items.enumerated() {
                switch item {
                case .number(let text):
                    out.append(make(Numbers.render(number: text)))
                case .string(let text):
                    let value = try symbols.resolvePlain(text, at: path.index(i))
                    switch definition.type {
                    case .int:
                        guard let number = Numbers.integer(value) else {
                            throw path.index(i).error("'\(value.prefix(64))' is not an integer")
                        }
                        out.append(make(String(number)))
                    case .float:
                        guard Numbers.double(value) != nil else {
                            throw path.index(i).error("'\(value.prefix(64))' is not a floating point number")
                        }
                        out.append(make(Self.floatText(value)))
                    case .string, .path:
                        guard (1...1024).contains(value.count) else {
                            throw path.index(i).error("a task parameter value must be 1 to 1024 characters after resolution")
                        }
                        out.append(make(value))
                    }
                default:
                    throw path.index(i).error("a \(definition.type.rawValue) range item cannot be \(item.kind)")
                }
            }
            return out
        }
    }

    /// A `<floatstring>` as the reference renders it: trimmed, redundant leading zeros dropped,
    /// no sign on a zero.
    static func floatText(_ text: String) -> String {
        var body = Substring(text.trimmingSpaces)
        var sign = ""
        if let first = body.first, first == "-" || first == "+" {
            sign = String(first)
            body = body.dropFirst()
        }
        while body.first == "0", let next = body.dropFirst().first, next.isASCII, next.isNumber { body = body.dropFirst() }
        return spellsZero(body) ? String(body) : sign + body
    }

    /// An all-zero mantissa, whatever the exponent (`0.00`, `0e5`; not `1e-400`).
    static func spellsZero(_ body: Substring) -> Bool {
        let mantissa = body.split(whereSeparator: { $0 == "e" || $0 == "E" }).first ?? ""
        if body.contains(where: { $0 == "e" || $0 == "E" }) {
            guard let exponent = body.split(whereSeparator: { $0 == "e" || $0 == "E" }).dropFirst().first,
                  body.filter({ $0 == "e" || $0 == "E" }).count == 1 else { return false }
            let digits = exponent.first == "+" || exponent.first == "-" ? exponent.dropFirst() : exponent
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return false }
        }
        return mantissa.contains("0") && mantissa.allSatisfy { $0 == "0" || $0 == "." }
    }
}
