import Yams

extension TemplateValue {
    /// A template read from YAML text (the CLI's `paddock submit T.yaml`, the tests' fixtures);
    /// nil for an empty document.
    public init?(yaml text: String) throws {
        guard let node = try Yams.compose(yaml: text) else { return nil }
        try self.init(yaml: node)
    }

    /// A YAML node as the template tree; numbers keep their text. YAML 1.1 (PyYAML, which the
    /// reference implementation reads templates with) writes floats with a '.': `1e2` is a string
    /// there, and a <floatstring> keeps its text.
    public init(yaml node: Node) throws {
        switch node {
        case .scalar(let scalar):
            switch Tag.Name(rawValue: node.tag.rawValue) {
            case .null: self = .null
            case .bool: self = node.bool.map(TemplateValue.bool) ?? .string(scalar.string)
            case .int: self = node.int.map { .number(String($0)) } ?? .string(scalar.string)
            case .float: self = scalar.string.contains(".") ? .number(scalar.string) : .string(scalar.string)
            default: self = .string(scalar.string)
            }
        case .sequence(let sequence):
            self = .array(try sequence.map(TemplateValue.init(yaml:)))
        case .mapping(let mapping):
            var object = TemplateObject()
            for (key, item) in mapping {
                guard case .scalar(let name) = key else { throw OpenJDError("", "mapping keys must be strings") }
                object[name.string] = try TemplateValue(yaml: item)
            }
            self = .object(object)
        case .alias:
            throw OpenJDError("", "YAML aliases are not supported in templates")
        }
    }
}
