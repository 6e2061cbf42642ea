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
        let cpus = try c.decodeIfPresent(Double.self, forKey: .cpus) ?? 0
        guard cpus.isFinite, cpus >= 0, cpus <= Limits.maxCPUs else {
            throw DecodingError.dataCorruptedError(forKey: .cpus, in: c,
                debugDescription: "cpus must be a number between 0 and \(Int(Limits.maxCPUs))")
        }
        self.init(cpus: cpus,
                  ram: try Self.decodeSize(c, .ram),
                  disk: try Self.decodeSize(c, .disk),
                  gpus: try Self.decodeGPUs(c, .gpus))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(cpus, forKey: .cpus)
        try c.encode(ram, forKey: .ram)
        try c.encode(disk, forKey: .disk)
        try c.encode(gpus, forKey: .gpus)
    }

    /// A size is an integer of bytes or a string with a unit (`"8GiB"`).
    static func decodeSize<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) throws -> Int64 {
        guard c.contains(key) else { return 0 }
        if let bytes = try? c.decode(Int64.self, forKey: key) {
            guard bytes >= 0, bytes <= ByteSize.maximum else {
                throw DecodingError.dataCorruptedError(forKey: key, in: c,
                    debugDescription: "\(key.stringValue) must be between 0 and 1PiB")
            }
            return bytes
        }
        guard let text = try? c.decode(String.self, forKey: key), let bytes = ByteSize.parse(text) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: c,
                debugDescription: "\(key.stringValue) must be a number of bytes or a size such as \"8GiB\"")
        }
        return bytes
    }

    static func decodeGPUs<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) throws -> Int64 {
        guard c.contains(key) else { return 0 }
        guard let gpus = try? c.decode(Int64.self, forKey: key), gpus >= 0, gpus <= Limits.maxGPUs else {
            throw DecodingError.dataCorruptedError(forKey: key, in: c,
                debugDescription: "gpus must be a whole number between 0 and \(Limits.maxGPUs)")
        }
        return gpus
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
        let cpus = try c.decodeIfPresent(Double.self, forKey: .cpus) ?? 1
        guard cpus.isFinite, cpus >= 0, cpus <= Limits.maxCPUs else {
            throw DecodingError.dataCorruptedError(forKey: .cpus, in: c,
                debugDescription: "cpus must be a number between 0 and \(Int(Limits.maxCPUs))")
        }
        resources = ResourceVector(cpus: cpus,
                                   ram: try ResourceVector.decodeSize(c, .ram),
                                   disk: try ResourceVector.decodeSize(c, .disk),
                                   gpus: try ResourceVector.decodeGPUs(c, .gpus))
        tags = try Self.decodeTags(c, .tags)
        if let attributes = try c.decodeIfPresent([String: AttributeWish].self, forKey: .attributes) {
            tags = try Self.merge(tags, attributes: attributes, c)
        }
        if let amounts = try c.decodeIfPresent([String: AmountWish].self, forKey: .amounts) {
            tags = try Self.merge(tags, amounts: amounts, c)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(resources.cpus, forKey: .cpus)
        try c.encode(resources.ram, forKey: .ram)
        try c.encode(resources.disk, forKey: .disk)
        try c.encode(resources.gpus, forKey: .gpus)
        try c.encode(tags, forKey: .tags)
    }

    static func decodeTags<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) throws -> [String] {
        let tags = try c.decodeIfPresent([String].self, forKey: key) ?? []
        guard tags.count <= Limits.tagCount,
              tags.allSatisfy({ $0.count <= Limits.tagLength && $0.isSafeToken }) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: c,
                debugDescription: "at most \(Limits.tagCount) tags of letters, digits and -_.: (each ≤ \(Limits.tagLength) chars)")
        }
        return Array(Set(tags)).sorted()
    }
}
