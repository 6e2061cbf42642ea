import Foundation

/// One sample of what a host is doing, taken by its agent and carried on a heartbeat, so that an
/// operator sees every host without logging into it. Sizes are bytes, shares are percentages (0–100).
///
/// Decoding refuses unknown fields (as every request body does) and checks kinds; then each part's
/// `validate()` bounds every list (the master keeps samples, so one agent must not make it hold
/// megabytes) and refuses negative sizes and percentages outside 0–100: a sample that says so is a
/// bug in the agent, not something to plot. Strings are cut to their bound as they are read.
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
        try decoder.validate(self)
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
            busyPercent = try c.decode(Double.self, forKey: .busyPercent)
            cores = try c.decodeWholeNumber(Int.self, forKey: .cores)
            perCore = try c.decode([Double].self, forKey: .perCore)
            try decoder.validate(self)
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
            one = try c.decode(Double.self, forKey: .one)
            five = try c.decode(Double.self, forKey: .five)
            fifteen = try c.decode(Double.self, forKey: .fifteen)
            try decoder.validate(self)
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
            total = try c.decodeWholeNumber(Int64.self, forKey: .total)
            used = try c.decodeWholeNumber(Int64.self, forKey: .used)
            available = try c.decodeWholeNumber(Int64.self, forKey: .available)
            swapTotal = try c.decodeWholeNumber(Int64.self, forKey: .swapTotal)
            swapUsed = try c.decodeWholeNumber(Int64.self, forKey: .swapUsed)
            try decoder.validate(self)
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
            total = try c.decodeWholeNumber(Int64.self, forKey: .total)
            free = try c.decodeWholeNumber(Int64.self, forKey: .free)
            try decoder.validate(self)
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
            name = String(try c.decode(String.self, forKey: .name).prefix(Limits.nameLength))
            utilizationPercent = try c.decodeIfPresent(Double.self, forKey: .utilizationPercent)
            memoryTotal = try c.decodeWholeNumberIfPresent(Int64.self, forKey: .memoryTotal)
            memoryUsed = try c.decodeWholeNumberIfPresent(Int64.self, forKey: .memoryUsed)
            try decoder.validate(self)
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
        cpuSeconds = try c.decode(Double.self, forKey: .cpuSeconds)
        rss = try c.decodeWholeNumber(Int64.self, forKey: .rss)
        peakRSS = try c.decodeWholeNumber(Int64.self, forKey: .peakRSS)
        processes = try c.decodeWholeNumber(Int.self, forKey: .processes)
        try decoder.validate(self)
    }
}

// MARK: validation (pure, after decoding)

extension HostMetrics: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) {
        try require(gpus.count <= Int(Limits.maxGPUs) ? nil : "at most \(Limits.maxGPUs) GPUs", at: "gpus")
    }
}

extension HostMetrics.CPU: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) {
        try require(SampleRules.percent(busyPercent, "busy_percent"), at: "busy_percent")
        try require(cores >= 0 && Double(cores) <= Limits.maxCPUs ? nil : "cores must be between 0 and \(Int(Limits.maxCPUs))",
                    at: "cores")
        try require(Double(perCore.count) <= Limits.maxCPUs && perCore.allSatisfy { SampleRules.percent($0, "") == nil } ? nil
                        : "per_core is at most \(Int(Limits.maxCPUs)) percentages between 0 and 100", at: "per_core")
    }
}

extension HostMetrics.Load: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) {
        for (value, field) in [(one, "one"), (five, "five"), (fifteen, "fifteen")] {
            try require(SampleRules.nonNegative(value, field), at: field)
        }
    }
}

extension HostMetrics.Memory: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) {
        for (value, field) in [(total, "total"), (used, "used"), (available, "available"), (swapTotal, "swap_total"), (swapUsed, "swap_used")] {
            try require(SampleRules.size(value, field), at: field)
        }
    }
}

extension HostMetrics.Disk: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) {
        try require(SampleRules.size(total, "total"), at: "total")
        try require(SampleRules.size(free, "free"), at: "free")
    }
}

extension HostMetrics.GPU: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) {
        try require(index >= 0 && Int64(index) < Limits.maxGPUs ? nil : "index must be between 0 and \(Limits.maxGPUs - 1)", at: "index")
        if let utilizationPercent { try require(SampleRules.percent(utilizationPercent, "utilization_percent"), at: "utilization_percent") }
        if let memoryTotal { try require(SampleRules.size(memoryTotal, "memory_total"), at: "memory_total") }
        if let memoryUsed { try require(SampleRules.size(memoryUsed, "memory_used"), at: "memory_used") }
    }
}

extension TaskUsage: ValidatedAfterDecoding {
    func validate() throws(BrokenRule) {
        try require(SampleRules.nonNegative(cpuSeconds, "cpu_seconds"), at: "cpu_seconds")
        try require(SampleRules.size(rss, "rss"), at: "rss")
        try require(SampleRules.size(peakRSS, "peak_rss"), at: "peak_rss")
        try require(processes >= 0 ? nil : "processes must be ≥ 0", at: "processes")
    }
}

/// The rules of a measured value: nil when it is fine, else the rule it breaks.
enum SampleRules {
    static func percent(_ value: Double, _ field: String) -> String? {
        value.isFinite && value >= 0 && value <= 100 ? nil : "\(field) is a percentage between 0 and 100"
    }

    static func nonNegative(_ value: Double, _ field: String) -> String? {
        value.isFinite && value >= 0 ? nil : "\(field) must be ≥ 0"
    }

    /// A size in bytes: not negative (bounded by Int64 itself: a farm may have a huge filesystem).
    static func size(_ value: Int64, _ field: String) -> String? {
        value >= 0 ? nil : "\(field) must be ≥ 0"
    }
}
