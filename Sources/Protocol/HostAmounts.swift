import Foundation

/// Host amounts that a task needs a host to have, not to give it: OpenJD's
/// `amount.worker.gpu.memory` (MiB of memory on each of the host's GPUs) and `amount.custom.NAME`
/// (anything a site counts: licenses, cores of a special kind, a rack's power budget). Unlike cpus,
/// ram, disk and gpus they are not reserved per task; a task runs on a host whose amount lies in its
/// range (OpenJD 2023-09 §3.3: `min` ≤ amount ≤ `max`).
///
/// Like host attributes (`HostAttributes`) they are tags, so that scheduling stays tag matching and
/// nothing new is stored:
/// - an agent with the amount NAME of V carries the tag `amount:NAME:V` (`amount:gpu.memory:24576`,
///   `amount:custom.licenses:4`);
/// - a task that needs NAME between MIN and MAX carries `range:NAME:MIN:MAX`, either bound empty
///   when not given (`range:custom.licenses:2:`), which an agent satisfies with an `amount:NAME:V`
///   tag in that range.
public enum HostAmounts {
    public static let agentPrefix = "amount:"
    public static let requirementPrefix = "range:"
    public static let gpuMemory = "gpu.memory"

    public enum Problem: Error, Equatable, CustomStringConvertible {
        case badName(String)
        case badNumber(name: String, text: String)
        case emptyRange(name: String)
        case tooLong(String)

        public var description: String {
            switch self {
            case .badName(let name):
                "'\(name.prefix(64))' is not an amount name: gpu.memory or custom.NAME (NAME of letters, digits and _, not starting with a digit)"
            case .badNumber(let name, let text): "\(name): '\(text.prefix(64))' is not a number ≥ 0"
            case .emptyRange(let name): "\(name): its min is above its max"
            case .tooLong(let tag): "'\(tag.prefix(64))…' is longer than a tag may be (\(Limits.tagLength) characters)"
            }
        }
    }

    /// The canonical name: `amount.` and `worker.` dropped, lower-cased (OpenJD's names are
    /// case-insensitive); `gpu.memory` or `custom.NAME`.
    public static func name(_ raw: String) throws(Problem) -> String {
        var name = raw.lowercased()
        if name.hasPrefix("amount.") { name.removeFirst("amount.".count) }
        if name.hasPrefix("worker.") { name.removeFirst("worker.".count) }
        if name == gpuMemory { return name }
        guard name.hasPrefix("custom."), HostAttributes.isIdentifier(name.dropFirst("custom.".count)) else { throw .badName(raw) }
        return name
    }

    /// The tag of an agent that has `value` of the amount `name`.
    public static func tag(_ name: String, _ value: Double) throws(Problem) -> String {
        let canonical = try Self.name(name)
        guard value.isFinite, value >= 0 else { throw .badNumber(name: canonical, text: "\(value)") }
        return try bounded(agentPrefix + canonical + ":" + format(value))
    }

    /// The tag of a task that needs the amount `name` between `min` and `max` (either may be nil).
    public static func requirement(_ name: String, min: Double?, max: Double?) throws(Problem) -> String {
        let canonical = try Self.name(name)
        for bound in [min, max].compactMap({ $0 }) where !bound.isFinite || bound < 0 {
            throw .badNumber(name: canonical, text: "\(bound)")
        }
        if let min, let max, min > max { throw .emptyRange(name: canonical) }
        return try bounded(requirementPrefix + canonical + ":" + (min.map(format) ?? "") + ":" + (max.map(format) ?? ""))
    }

    /// A name as a person writes it: a custom amount's NAME with or without `custom.` (or
    /// `amount.custom.`), or gpu.memory.
    public static func written(_ name: String) -> String {
        let lowered = name.lowercased()
        return lowered.hasPrefix("amount.") || lowered.hasPrefix("custom.") || lowered == gpuMemory ? name : "custom." + name
    }

    /// An agent's `--amount NAME=NUMBER` (NAME as `written` takes it).
    public static func declared(_ text: String) throws(Problem) -> String {
        guard let equals = text.firstIndex(of: "=") else { throw .badName(text) }
        let name = written(String(text[..<equals]).trimmingCharacters(in: .whitespaces))
        let number = String(text[text.index(after: equals)...]).trimmingCharacters(in: .whitespaces)
        guard let value = Double(number), value.isFinite, value >= 0 else {
            throw .badNumber(name: (try? Self.name(name)) ?? name, text: number)
        }
        return try tag(name, value)
    }

    /// True when an agent with `tags` meets the requirement tag `required` (`range:NAME:MIN:MAX`).
    static func satisfies(_ tags: Set<String>, _ required: String) -> Bool {
        let parts = required.dropFirst(requirementPrefix.count).split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty else { return false }
        let bounds = parts.dropFirst().map { $0.isEmpty ? Double?.none : Double($0) }
        // A bound that is written but not a number is met by no agent.
        guard zip(parts.dropFirst(), bounds).allSatisfy({ $0.isEmpty || $1 != nil }) else { return false }
        let min = bounds[0], max = bounds[1]
        let prefix = agentPrefix + parts[0] + ":"
        return tags.contains { tag in
            guard tag.hasPrefix(prefix), let value = Double(tag.dropFirst(prefix.count)) else { return false }
            return value >= (min ?? -.infinity) && value <= (max ?? .infinity)
        }
    }

    /// A number as a tag writes it: whole numbers without a fraction (`24576`, not `24576.0`).
    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    static func bounded(_ tag: String) throws(Problem) -> String {
        guard tag.count <= Limits.tagLength else { throw .tooLong(tag) }
        return tag
    }
}
