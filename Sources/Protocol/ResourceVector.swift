import Foundation

/// CPU, memory, scratch disk and GPUs, in exact integers: CPUs in thousandths so
/// that `0.5 + 0.25` never drifts, bytes for RAM and disk. All resource
/// arithmetic (what fits, what is free) is done on this value type.
public struct ResourceVector: Hashable, Sendable {
    public var milliCPUs: Int64
    public var ram: Int64
    public var disk: Int64
    public var gpus: Int64

    public init(milliCPUs: Int64 = 0, ram: Int64 = 0, disk: Int64 = 0, gpus: Int64 = 0) {
        self.milliCPUs = milliCPUs
        self.ram = ram
        self.disk = disk
        self.gpus = gpus
    }

    public init(cpus: Double, ram: Int64 = 0, disk: Int64 = 0, gpus: Int64 = 0) {
        self.init(milliCPUs: Int64((cpus * 1000).rounded()), ram: ram, disk: disk, gpus: gpus)
    }

    public static let zero = ResourceVector()

    public var cpus: Double { Double(milliCPUs) / 1000 }

    /// True when every component of `self` is at most the matching one of `capacity`.
    public func fits(in capacity: ResourceVector) -> Bool {
        milliCPUs <= capacity.milliCPUs && ram <= capacity.ram && disk <= capacity.disk && gpus <= capacity.gpus
    }

    public static func + (a: Self, b: Self) -> Self {
        Self(milliCPUs: a.milliCPUs + b.milliCPUs, ram: a.ram + b.ram, disk: a.disk + b.disk, gpus: a.gpus + b.gpus)
    }

    public static func - (a: Self, b: Self) -> Self {
        Self(milliCPUs: a.milliCPUs - b.milliCPUs, ram: a.ram - b.ram, disk: a.disk - b.disk, gpus: a.gpus - b.gpus)
    }

    /// Componentwise minimum: the tighter of two views of what is free.
    public func clamped(to other: Self) -> Self {
        Self(milliCPUs: min(milliCPUs, other.milliCPUs), ram: min(ram, other.ram),
             disk: min(disk, other.disk), gpus: min(gpus, other.gpus))
    }

    public var isNonNegative: Bool { milliCPUs >= 0 && ram >= 0 && disk >= 0 && gpus >= 0 }

    public var summary: String {
        var parts = ["cpus \(Self.formatCPUs(milliCPUs))", "ram \(ByteSize.format(ram))"]
        if disk > 0 { parts.append("disk \(ByteSize.format(disk))") }
        if gpus > 0 { parts.append("gpus \(gpus)") }
        return parts.joined(separator: ", ")
    }

    public static func formatCPUs(_ milli: Int64) -> String {
        milli % 1000 == 0 ? String(milli / 1000) : String(Double(milli) / 1000)
    }
}

extension ResourceVector: Codable {
    enum CodingKeys: String, CodingKey, CaseIterable { case cpus, ram, disk, gpus }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let written = try WrittenResources(c, cpus: .cpus, ram: .ram, disk: .disk, gpus: .gpus, defaultCPUs: 0)
        do { self = try written.validated() } catch { throw error.decodingError(at: decoder.codingPath) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(cpus, forKey: .cpus)
        try c.encode(ram, forKey: .ram)
        try c.encode(disk, forKey: .disk)
        try c.encode(gpus, forKey: .gpus)
    }
}

/// Resources as written: `cpus` a number, `ram` and `disk` bytes or a size (`"8GiB"`), `gpus` a
/// whole number; their bounds not yet checked.
struct WrittenResources {
    var cpus: Double
    var ram: Int64
    var disk: Int64
    var gpus: Int64

    /// Read from the keys of a body that carries resources (`ResourceVector`, `TaskRequirements`).
    init<K: CodingKey>(_ c: KeyedDecodingContainer<K>, cpus: K, ram: K, disk: K, gpus: K, defaultCPUs: Double) throws {
        self.cpus = try c.decodeIfPresent(Double.self, forKey: cpus) ?? defaultCPUs
        self.ram = try c.decodeByteSizeIfPresent(forKey: ram) ?? 0
        self.disk = try c.decodeByteSizeIfPresent(forKey: disk) ?? 0
        if c.contains(gpus) {
            guard let count = try? c.decode(Int64.self, forKey: gpus) else {
                throw DecodingError.dataCorruptedError(forKey: gpus, in: c, debugDescription: FieldRules.gpusRule)
            }
            self.gpus = count
        } else {
            self.gpus = 0
        }
    }

    /// The resources, each within its bounds (checked before CPUs turn into thousandths).
    func validated() throws(BrokenRule) -> ResourceVector {
        try require(FieldRules.cpus(cpus), at: "cpus")
        try require(FieldRules.bytes(ram, "ram"), at: "ram")
        try require(FieldRules.bytes(disk, "disk"), at: "disk")
        try require(FieldRules.gpus(gpus), at: "gpus")
        return ResourceVector(cpus: cpus, ram: ram, disk: disk, gpus: gpus)
    }
}

extension KeyedDecodingContainer {
    /// A size: a whole number of bytes, or text with a unit (`"8GiB"`, read by `ByteSize`).
    func decodeByteSizeIfPresent(forKey key: Key) throws -> Int64? {
        guard contains(key) else { return nil }
        if let bytes = try? decode(Int64.self, forKey: key) { return bytes }
        guard let text = try? decode(String.self, forKey: key), let bytes = ByteSize.parse(text) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: self,
                debugDescription: "\(key.stringValue) must be a number of bytes or a size such as \"8GiB\"")
        }
        return bytes
    }
}

/// What a task needs to run: resources and the tags the agent must carry.
public struct TaskRequirements: Hashable, Sendable {
    public var resources: ResourceVector
    public var tags: [String]

    public init(resources: ResourceVector, tags: [String] = []) {
        self.resources = resources
        self.tags = tags
    }

    /// A task that says nothing needs one CPU, like a Slurm or OpenCue default.
    public static let `default` = TaskRequirements(resources: ResourceVector(milliCPUs: 1000))
}

extension TaskRequirements: Codable {
    enum CodingKeys: String, CodingKey, CaseIterable { case cpus, ram, disk, gpus, tags, attributes, amounts }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let resources = try WrittenResources(c, cpus: .cpus, ram: .ram, disk: .disk, gpus: .gpus, defaultCPUs: 1)
        let tags = try c.decodeIfPresent([String].self, forKey: .tags) ?? []
        let attributes = try c.decodeIfPresent([String: AttributeWish].self, forKey: .attributes) ?? [:]
        let amounts = try c.decodeIfPresent([String: AmountWish].self, forKey: .amounts) ?? [:]
        do {
            self = try Self.validated(resources, tags: tags, attributes: attributes, amounts: amounts)
        } catch {
            throw error.decodingError(at: decoder.codingPath)
        }
    }

    /// Requirements as written, checked: resources within their bounds, tags, attributes and
    /// amounts (which become tags; `HostAttributes`, `HostAmounts`).
    static func validated(_ resources: WrittenResources, tags: [String], attributes: [String: AttributeWish],
                          amounts: [String: AmountWish]) throws(BrokenRule) -> TaskRequirements {
        let vector = try resources.validated()
        try require(FieldRules.tags(tags), at: "tags")
        return TaskRequirements(resources: vector, tags: try merge(tags, attributes: attributes, amounts: amounts))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(resources.cpus, forKey: .cpus)
        try c.encode(resources.ram, forKey: .ram)
        try c.encode(resources.disk, forKey: .disk)
        try c.encode(resources.gpus, forKey: .gpus)
        try c.encode(tags, forKey: .tags)
    }

    /// Tags as a set: each once, sorted.
    static func tagSet(_ tags: [String]) -> [String] {
        Array(Set(tags)).sorted()
    }
}
