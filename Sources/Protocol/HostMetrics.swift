import Foundation

/// One sample of what a host is doing, taken by its agent and carried on a heartbeat, so that an
/// operator sees every host without logging into it. Sizes are bytes, shares are percentages (0–100).
///
/// Decoding refuses unknown fields (as every request body does), bounds every list and string (the
/// master keeps samples, so one agent must not make it hold megabytes) and refuses negative sizes and
/// percentages outside 0–100: a sample that says so is a bug in the agent, not something to plot.
public struct HostMetrics: Codable, Sendable, Equatable {
    /// When the agent took the sample (its own clock).
    public var at: Date
    public var cpu: CPU
    public var load: Load
    public var memory: Memory
    /// The filesystem of the agent's work dir: where tasks write their scratch files.
    public var disk: Disk
    /// Empty when the host has no GPU, or no `nvidia-smi` to ask.
    public var gpus: [GPU]

    public init(at: Date, cpu: CPU, load: Load, memory: Memory, disk: Disk, gpus: [GPU]) {
        self.at = at
        self.cpu = cpu
        self.load = load
        self.memory = memory
        self.disk = disk
        self.gpus = gpus
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case at, cpu, load, memory, disk, gpus }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        at = try c.decode(Date.self, forKey: .at)
        cpu = try c.decode(CPU.self, forKey: .cpu)
        load = try c.decode(Load.self, forKey: .load)
        memory = try c.decode(Memory.self, forKey: .memory)
        disk = try c.decode(Disk.self, forKey: .disk)
        gpus = try c.decodeIfPresent([GPU].self, forKey: .gpus) ?? []
        guard gpus.count <= Int(Limits.maxGPUs) else {
            throw DecodingError.dataCorruptedError(forKey: .gpus, in: c,
                debugDescription: "at most \(Limits.maxGPUs) GPUs")
        }
    }

    /// CPU time spent busy (anything but idle and I/O wait) since the agent's previous sample.
    public struct CPU: Codable, Sendable, Equatable {
        /// The whole host: 100 is every core busy.
        public var busyPercent: Double
        /// One entry per online core, in the kernel's order (`cpu0`, `cpu1`...).
        public var perCore: [Double]
        public var cores: Int

        public init(busyPercent: Double, perCore: [Double], cores: Int) {
            self.busyPercent = busyPercent
            self.perCore = perCore
            self.cores = cores
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case cores
            case busyPercent = "busy_percent"
            case perCore = "per_core"
        }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            busyPercent = try c.decodePercent(forKey: .busyPercent)
            cores = try c.decodeWholeNumber(Int.self, forKey: .cores)
            guard cores >= 0, Double(cores) <= Limits.maxCPUs else {
                throw DecodingError.dataCorruptedError(forKey: .cores, in: c,
                    debugDescription: "cores must be between 0 and \(Int(Limits.maxCPUs))")
            }
            perCore = try c.decode([Double].self, forKey: .perCore)
            guard Double(perCore.count) <= Limits.maxCPUs, perCore.allSatisfy(\.isPercent) else {
                throw DecodingError.dataCorruptedError(forKey: .perCore, in: c,
                    debugDescription: "per_core is at most \(Int(Limits.maxCPUs)) percentages between 0 and 100")
            }
        }
    }

    /// `/proc/loadavg`: runnable (and uninterruptible) tasks averaged over 1, 5 and 15 minutes.
    public struct Load: Codable, Sendable, Equatable {
        public var one: Double
        public var five: Double
        public var fifteen: Double

        public init(one: Double, five: Double, fifteen: Double) {
            self.one = one
            self.five = five
            self.fifteen = fifteen
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case one, five, fifteen }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            one = try c.decodeNonNegative(forKey: .one)
            five = try c.decodeNonNegative(forKey: .five)
            fifteen = try c.decodeNonNegative(forKey: .fifteen)
        }
    }

    /// RAM and swap in bytes. `used` is `total - available`, as `free` counts it: page cache the
    /// kernel would drop on demand is not used.
    public struct Memory: Codable, Sendable, Equatable {
        public var total: Int64
        public var used: Int64
        public var available: Int64
        public var swapTotal: Int64
        public var swapUsed: Int64

        public init(total: Int64, used: Int64, available: Int64, swapTotal: Int64, swapUsed: Int64) {
            self.total = total
            self.used = used
            self.available = available
            self.swapTotal = swapTotal
            self.swapUsed = swapUsed
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case total, used, available
            case swapTotal = "swap_total"
            case swapUsed = "swap_used"
        }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            total = try c.decodeSize(forKey: .total)
            used = try c.decodeSize(forKey: .used)
            available = try c.decodeSize(forKey: .available)
            swapTotal = try c.decodeSize(forKey: .swapTotal)
            swapUsed = try c.decodeSize(forKey: .swapUsed)
        }
    }

    /// `statvfs` of a directory, in bytes. `free` is what an unprivileged user may still write
    /// (`f_bavail`, df's "Avail"), not the blocks reserved for root.
    public struct Disk: Codable, Sendable, Equatable {
        public var path: String
        public var total: Int64
        public var free: Int64

        public init(path: String, total: Int64, free: Int64) {
            self.path = path
            self.total = total
            self.free = free
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case path, total, free }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            path = String(try c.decode(String.self, forKey: .path).prefix(Limits.pathLength))
            total = try c.decodeSize(forKey: .total)
            free = try c.decodeSize(forKey: .free)
        }
    }

    /// One GPU as `nvidia-smi` reports it. A value the driver does not report (`[N/A]`, as for
    /// MIG-partitioned or some passive GPUs) is `null` rather than a made-up 0.
    public struct GPU: Codable, Sendable, Equatable {
        /// The driver's index, as `CUDA_VISIBLE_DEVICES` counts GPUs.
        public var index: Int
        public var name: String
        public var utilizationPercent: Double?
        public var memoryTotal: Int64?
        public var memoryUsed: Int64?

        public init(index: Int, name: String, utilizationPercent: Double?, memoryTotal: Int64?, memoryUsed: Int64?) {
            self.index = index
            self.name = name
            self.utilizationPercent = utilizationPercent
            self.memoryTotal = memoryTotal
            self.memoryUsed = memoryUsed
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case index, name
            case utilizationPercent = "utilization_percent"
            case memoryTotal = "memory_total"
            case memoryUsed = "memory_used"
        }

        /// Every field is always present, `null` when unknown: a reader need not tell "missing" from "unknown".
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encode(name, forKey: .name)
            try c.encode(utilizationPercent, forKey: .utilizationPercent)
            try c.encode(memoryTotal, forKey: .memoryTotal)
            try c.encode(memoryUsed, forKey: .memoryUsed)
        }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            index = try c.decodeWholeNumber(Int.self, forKey: .index)
            guard index >= 0, Int64(index) < Limits.maxGPUs else {
                throw DecodingError.dataCorruptedError(forKey: .index, in: c,
                    debugDescription: "index must be between 0 and \(Limits.maxGPUs - 1)")
            }
            name = String(try c.decode(String.self, forKey: .name).prefix(Limits.nameLength))
            utilizationPercent = try c.ifPresent(.utilizationPercent) { try c.decodePercent(forKey: $0) }
            memoryTotal = try c.ifPresent(.memoryTotal) { try c.decodeSize(forKey: $0) }
            memoryUsed = try c.ifPresent(.memoryUsed) { try c.decodeSize(forKey: $0) }
        }
    }
}

/// What one running task uses, over its whole process group (the task's process and everything it
/// started that stayed in its group), so that a task's cost is visible while it runs and after it ends.
public struct TaskUsage: Codable, Sendable, Equatable {
    /// User plus system CPU time, in seconds, of the live processes of the group and of the children
    /// they have already waited for.
    public var cpuSeconds: Double
    /// Resident memory of the live processes now, in bytes. Shared pages count once per process,
    /// as `ps` sums them: an upper bound.
    public var rss: Int64
    /// The largest `rss` seen so far for this run (a single sample's is its own `rss`).
    public var peakRSS: Int64
    /// Live (not zombie) processes in the group.
    public var processes: Int

    public init(cpuSeconds: Double, rss: Int64, peakRSS: Int64, processes: Int) {
        self.cpuSeconds = cpuSeconds
        self.rss = rss
        self.peakRSS = peakRSS
        self.processes = processes
    }

    public static let zero = TaskUsage(cpuSeconds: 0, rss: 0, peakRSS: 0, processes: 0)

    /// The newer sample `next`, keeping the peak RSS and CPU time seen across both: CPU time of
    /// processes that left the group unwaited (orphans reaped by init) drops out of a later sample,
    /// but was spent all the same.
    public func updated(with next: TaskUsage) -> TaskUsage {
        TaskUsage(cpuSeconds: max(cpuSeconds, next.cpuSeconds), rss: next.rss,
                  peakRSS: max(peakRSS, next.peakRSS, next.rss), processes: next.processes)
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case rss, processes
        case cpuSeconds = "cpu_seconds"
        case peakRSS = "peak_rss"
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        cpuSeconds = try c.decodeNonNegative(forKey: .cpuSeconds)
        rss = try c.decodeSize(forKey: .rss)
        peakRSS = try c.decodeSize(forKey: .peakRSS)
        processes = try c.decodeWholeNumber(Int.self, forKey: .processes)
        guard processes >= 0 else {
            throw DecodingError.dataCorruptedError(forKey: .processes, in: c, debugDescription: "processes must be ≥ 0")
        }
    }
}

extension Double {
    fileprivate var isPercent: Bool { isFinite && self >= 0 && self <= 100 }
}

extension KeyedDecodingContainer {
    /// `decode(key)` when the field is there and not `null`.
    fileprivate func ifPresent<T>(_ key: Key, _ decode: (Key) throws -> T) throws -> T? {
        guard contains(key), try !decodeNil(forKey: key) else { return nil }
        return try decode(key)
    }

    fileprivate func decodePercent(forKey key: Key) throws -> Double {
        let value = try decode(Double.self, forKey: key)
        guard value.isPercent else {
            throw DecodingError.dataCorruptedError(forKey: key, in: self,
                debugDescription: "\(key.stringValue) is a percentage between 0 and 100")
        }
        return value
    }

    fileprivate func decodeNonNegative(forKey key: Key) throws -> Double {
        let value = try decode(Double.self, forKey: key)
        guard value.isFinite, value >= 0 else {
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "\(key.stringValue) must be ≥ 0")
        }
        return value
    }

    /// A size in bytes: a whole number, not negative (bounded by Int64 itself: a farm may have a huge filesystem).
    fileprivate func decodeSize(forKey key: Key) throws -> Int64 {
        let value = try decodeWholeNumber(Int64.self, forKey: key)
        guard value >= 0 else {
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "\(key.stringValue) must be ≥ 0")
        }
        return value
    }
}
