import Yams

/// Where a field of a YAML job file stands. The master names a refused field by its path
/// (`tasks[0].command`); a person editing the file wants its line and column.
enum JobFileLocation {
    enum Step: Equatable {
        case key(String)
        case index(Int)
    }

    /// The steps of a field path: `tasks[0].requirements.cpus` → tasks, 0, requirements, cpus.
    static func steps(_ path: String) -> [Step] {
        var steps: [Step] = []
        for part in path.split(separator: ".", omittingEmptySubsequences: true) {
            var rest = Substring(part)
            if let open = rest.firstIndex(of: "[") {
                if open > rest.startIndex { steps.append(.key(String(rest[..<open]))) }
                rest = rest[open...]
                while rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
                    guard let index = Int(rest[rest.index(after: rest.startIndex)..<close]) else { return steps }
                    steps.append(.index(index))
                    rest = rest[rest.index(after: close)...]
                }
            } else {
                steps.append(.key(String(rest)))
            }
        }
        return steps
    }

    /// The position of the field at `path` in `yaml` (of its key, for a mapping entry), or of the
    /// deepest part of the path the file has (a missing field: the mapping that lacks it). Nil when
    /// the text is not YAML.
    static func mark(of path: String, in yaml: String) -> Mark? {
        guard let root = try? Yams.compose(yaml: yaml) else { return nil }
        var node = root
        var mark = root.mark
        for step in steps(path) {
            switch step {
            case .key(let key):
                guard let pair = node.mapping?.first(where: { $0.key.string == key }) else { return mark }
                mark = pair.key.mark ?? mark
                node = pair.value
            case .index(let index):
                guard let sequence = node.sequence, sequence.indices.contains(index) else { return mark }
                node = sequence[index]
                mark = node.mark ?? mark
            }
        }
        return mark
    }
}
