import Foundation
import PaddockProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Samples what this host is doing for the heartbeat: CPU, load, memory, the work dir's disk and GPUs,
/// straight from /proc and statvfs. It runs every few seconds on every agent, so it reads a handful of
/// small files and starts no process except `nvidia-smi`, and that one only where it exists and at
/// most every `gpuInterval`.
///
/// An actor because CPU busy % is a difference: it keeps the previous /proc/stat counters.
public actor HostProbe {
    public nonisolated let workDir: String
    /// Resolved once at start: looking it up on PATH every heartbeat would cost more than the rest.
    nonisolated let nvidiaSMI: String?
    nonisolated let gpuTimeout: Duration
    nonisolated let gpuInterval: Duration

    private var previousCPU: CPUStat?
    private var gpus: [HostMetrics.GPU] = []
    private var nextGPUQuery: ContinuousClock.Instant?

    /// `nvidiaSMI` is the executable to ask about GPUs, `nil` for none (a test may point it at a fake).
    /// GPUs are asked about at most every `gpuInterval` (the sample between reuses the last answer);
    /// a query that fails or outlasts `gpuTimeout` is not tried again for a few minutes, so a host with
    /// the tools but no working driver does not pay for it on every heartbeat.
    public init(workDir: String, nvidiaSMI: String? = HostProbe.executable(named: "nvidia-smi"),
                gpuTimeout: Duration = .seconds(3), gpuInterval: Duration = .seconds(10)) {
        self.workDir = workDir
        self.nvidiaSMI = nvidiaSMI
        self.gpuTimeout = gpuTimeout
        self.gpuInterval = gpuInterval
    }

    /// One sample. CPU shares are over the time since the previous sample (since boot for the first).
    /// Never fails: what cannot be read is reported as 0 (or no GPU) rather than costing the heartbeat.
    public func sample() async -> HostMetrics {
        let at = Date()
        let cpuNow = ProcessLedger.readProcFile("/proc/stat").flatMap { Self.parseCPUStat(Self.text($0)) }
        let cpu = Self.cpuShares(from: previousCPU, to: cpuNow)
        if let cpuNow { previousCPU = cpuNow }
        let load = ProcessLedger.readProcFile("/proc/loadavg").flatMap { Self.parseLoadavg(Self.text($0)) }
            ?? HostMetrics.Load(one: 0, five: 0, fifteen: 0)
        let memory = ProcessLedger.readProcFile("/proc/meminfo").map { Self.parseMeminfo(Self.text($0)) }
            ?? HostMetrics.Memory(total: 0, used: 0, available: 0, swapTotal: 0, swapUsed: 0)
        let disk = Self.disk(workDir)
        return HostMetrics(at: at, cpu: cpu, load: load, memory: memory, disk: disk, gpus: await currentGPUs())
    }

    private func currentGPUs() async -> [HostMetrics.GPU] {
        guard let nvidiaSMI else { return [] }
        let now = ContinuousClock.now
        if let nextGPUQuery, now < nextGPUQuery { return gpus }
        // Set before the query: a sample taken meanwhile (the actor is reentrant) reuses the last answer.
        nextGPUQuery = now + gpuInterval
        let output = await Self.run(nvidiaSMI, ["--query-gpu=index,name,utilization.gpu,memory.used,memory.total",
                                                "--format=csv,noheader,nounits"], timeout: gpuTimeout)
        if let output {
            gpus = Self.parseNvidiaSMI(output)
        } else {
            gpus = []
            nextGPUQuery = ContinuousClock.now + .seconds(300)
        }
        return gpus
    }

    // MARK: - Per task

    /// CPU time and memory of every live process in the group `pgid` (a task's process is the leader of
    /// its own group, so this is the task with everything it started that stayed in its group).
    public static func usage(ofProcessGroup pgid: pid_t) -> TaskUsage {
        usage(ofProcessGroups: [pgid])[pgid] ?? .zero
    }

    /// `usage(ofProcessGroup:)` for several groups in one pass over /proc: an agent running many tasks
    /// reads each process once per heartbeat, not once per task.
    public static func usage(ofProcessGroups groups: Set<pid_t>) -> [pid_t: TaskUsage] {
        var ticks: [pid_t: UInt64] = [:], pages: [pid_t: Int64] = [:], counts: [pid_t: Int] = [:]
        guard !groups.isEmpty, let dir = opendir("/proc") else { return [:] }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let pid = pid_t(name),
                  let data = ProcessLedger.readProcFile("/proc/\(pid)/stat"),
                  let stat = parseProcessStat(text(data)), groups.contains(stat.group) else { continue }
            // A zombie has finished: its CPU time counts (until its parent reaps it and adds it to its
            // own children's time), it holds no memory and is not a running process.
            ticks[stat.group, default: 0] += stat.ticks
            guard !stat.isZombie else { continue }
            pages[stat.group, default: 0] += stat.residentPages
            counts[stat.group, default: 0] += 1
        }
        var result: [pid_t: TaskUsage] = [:]
        for group in groups {
            let rss = (pages[group] ?? 0) * pageSize
            result[group] = TaskUsage(cpuSeconds: Double(ticks[group] ?? 0) / Double(clockTicks),
                                      rss: rss, peakRSS: rss, processes: counts[group] ?? 0)
        }
        return result
    }

    static let clockTicks: Int64 = max(1, Int64(sysconf(Int32(_SC_CLK_TCK))))
    static let pageSize: Int64 = max(1, Int64(sysconf(Int32(_SC_PAGESIZE))))

    // MARK: - Parsing (pure, on the text of the /proc files)

    /// Jiffies from one `cpu` line of /proc/stat: `busy` is everything but idle and I/O wait (steal
    /// counts as busy: this host could not have it either).
    struct CPUTicks: Sendable, Equatable {
        var busy: UInt64
        var total: UInt64
    }

    struct CPUStat: Sendable, Equatable {
        var host: CPUTicks
        /// By the kernel's core number; a core taken offline has no line.
        var cores: [Int: CPUTicks]
    }

    /// `cpu  user nice system idle iowait irq softirq steal guest guest_nice` and one `cpuN` line per core.
    /// Guest time is already inside user and nice, so it is not added again.
    static func parseCPUStat(_ text: String) -> CPUStat? {
        var host: CPUTicks?
        var cores: [Int: CPUTicks] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("cpu") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let label = fields.first, fields.count >= 5 else { continue }
            let values = fields.dropFirst().prefix(8).compactMap { UInt64($0) }
            guard values.count >= 4 else { continue }
            let total = values.reduce(0, &+)
            let idle = values[3] &+ (values.count > 4 ? values[4] : 0)
            let ticks = CPUTicks(busy: total &- min(idle, total), total: total)
            if label == "cpu" {
                host = ticks
            } else if let core = Int(label.dropFirst(3)) {
                cores[core] = ticks
            }
        }
        return host.map { CPUStat(host: $0, cores: cores) }
    }

    /// Busy share, in percent, between two readings; 0 when no time passed or the counters went backwards.
    static func busyPercent(from old: CPUTicks?, to new: CPUTicks) -> Double {
        let old = old ?? CPUTicks(busy: 0, total: 0)
        guard new.total > old.total, new.busy >= old.busy else { return 0 }
        let share = Double(new.busy - old.busy) / Double(new.total - old.total) * 100
        return min(100, max(0, share))
    }

    static func cpuShares(from old: CPUStat?, to new: CPUStat?) -> HostMetrics.CPU {
        guard let new else { return HostMetrics.CPU(busyPercent: 0, perCore: [], cores: 0) }
        let perCore = new.cores.keys.sorted().compactMap { core in
            new.cores[core].map { busyPercent(from: old?.cores[core], to: $0) }
        }
        return HostMetrics.CPU(busyPercent: busyPercent(from: old?.host, to: new.host), perCore: perCore,
                               cores: new.cores.count)
    }

    /// `MemTotal:  16318320 kB` lines. `used` is total − available, as `free` counts it; kernels too old
    /// for MemAvailable (before 3.14) get free + buffers + page cache instead.
    static func parseMeminfo(_ text: String) -> HostMetrics.Memory {
        var values: [Substring: Int64] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, fields[0].hasSuffix(":"), let number = Int64(fields[1]) else { continue }
            let multiplier: Int64 = fields.count >= 3 && fields[2] == "kB" ? 1024 : 1
            values[fields[0].dropLast()] = number.multipliedReportingOverflow(by: multiplier).overflow
                ? Int64.max : number * multiplier
        }
        let total = values["MemTotal"] ?? 0
        let available = min(total, values["MemAvailable"]
            ?? ((values["MemFree"] ?? 0) + (values["Buffers"] ?? 0) + (values["Cached"] ?? 0)))
        let swapTotal = values["SwapTotal"] ?? 0
        let swapFree = min(swapTotal, values["SwapFree"] ?? swapTotal)
        return HostMetrics.Memory(total: total, used: total - available, available: available,
                                  swapTotal: swapTotal, swapUsed: swapTotal - swapFree)
    }

    /// `0.52 0.58 0.59 1/234 5678`.
    static func parseLoadavg(_ text: String) -> HostMetrics.Load? {
        let fields = text.split(whereSeparator: \.isWhitespace).prefix(3).compactMap { Double($0) }
        guard fields.count == 3, fields.allSatisfy({ $0.isFinite && $0 >= 0 }) else { return nil }
        return HostMetrics.Load(one: fields[0], five: fields[1], fifteen: fields[2])
    }

    /// Lines of `index, name, utilization.gpu, memory.used, memory.total` (memory in MiB). A value the
    /// driver does not have (`[N/A]`, `[Not Supported]`) is nil; a line that is not a GPU is skipped.
    static func parseNvidiaSMI(_ text: String) -> [HostMetrics.GPU] {
        text.split(whereSeparator: \.isNewline).compactMap { line in
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            // The name is whatever lies between the index and the last three numbers (it may hold a comma).
            guard fields.count >= 5, let index = Int(fields[0]), index >= 0 else { return nil }
            let name = fields[1..<(fields.count - 3)].joined(separator: ",")
            let numbers = fields.suffix(3).map { Double($0).flatMap { $0.isFinite && $0 >= 0 ? $0 : nil } }
            let mebibyte = 1024.0 * 1024.0
            return HostMetrics.GPU(index: index, name: String(name.prefix(Limits.nameLength)),
                                   utilizationPercent: numbers[0].map { min(100, $0) },
                                   memoryTotal: numbers[2].map { Int64(($0 * mebibyte).rounded()) },
                                   memoryUsed: numbers[1].map { Int64(($0 * mebibyte).rounded()) })
        }
    }

    struct ProcessStat: Sendable, Equatable {
        var group: pid_t
        var isZombie: Bool
        /// utime + stime + cutime + cstime: the process and the children it has waited for.
        var ticks: UInt64
        var residentPages: Int64
    }

    /// `/proc/PID/stat`: `pid (comm) state ppid pgrp ... utime(14) stime cutime cstime ... rss(24)`.
    /// The command name may hold spaces and parentheses, so fields are counted after the last `)`.
    /// RSS is field 24, the same count of resident pages as /proc/PID/statm's second field, without
    /// reading a second file per process.
    static func parseProcessStat(_ text: String) -> ProcessStat? {
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(whereSeparator: \.isWhitespace)
        // fields[0] is field 3 (state): field n is fields[n - 3].
        guard fields.count > 21, let state = fields[0].first, state != "X", let group = pid_t(fields[2]) else {
            return nil
        }
        let times = fields[11...14].map { max(0, Int64($0) ?? 0) }
        return ProcessStat(group: group, isZombie: state == "Z", ticks: UInt64(times.reduce(0, +)),
                           residentPages: max(0, Int64(fields[21]) ?? 0))
    }

    // MARK: - Helpers

    static func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    /// `statvfs` of `path` in bytes: all of it, and what an unprivileged user may still write.
    static func disk(_ path: String) -> HostMetrics.Disk {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return HostMetrics.Disk(path: path, total: 0, free: 0) }
        func bytes(_ blocks: UInt64) -> Int64 {
            let (product, overflow) = blocks.multipliedReportingOverflow(by: UInt64(info.f_frsize))
            return overflow ? Int64.max : Int64(clamping: product)
        }
        return HostMetrics.Disk(path: path, total: bytes(UInt64(info.f_blocks)), free: bytes(UInt64(info.f_bavail)))
    }

    /// The first executable `name` on the agent's PATH, or nil.
    public static func executable(named name: String,
                                  path: String? = ProcessInfo.processInfo.environment["PATH"]) -> String? {
        for dir in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") where !dir.isEmpty {
            let candidate = "\(dir)/\(name)"
            var info = stat()
            if stat(candidate, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        return nil
    }

    /// Runs `executable` and returns its output if it exits 0 within `timeout`; nil otherwise (at the
    /// timeout its process group gets SIGTERM, then SIGKILL a second later).
    ///
    /// Launched as a task is, not with Foundation's `Process`: that one passes on the signal mask of the
    /// thread that starts it, and the threads Foundation starts block most signals (SIGTERM among them),
    /// so a hung `nvidia-smi` would sit out the polite signal. Nothing here holds a thread of the
    /// concurrency pool while it waits.
    static func run(_ executable: String, _ arguments: [String], timeout: Duration) async -> String? {
        guard let child = try? ChildProcess.launch(argv: [executable] + arguments,
                                                   environment: ProcessInfo.processInfo.environment, cwd: "/")
        else { return nil }
        let watchdog = Task { () -> Bool in
            do { try await Task.sleep(for: timeout) } catch { return false }
            await child.terminate(grace: .seconds(1))
            return true
        }
        var output = Data()
        for await chunk in child.output where output.count < 1 << 20 { output.append(chunk) }
        let status = await child.waitForExit()
        watchdog.cancel()
        guard await !watchdog.value, status.succeeded else { return nil }
        return text(output)
    }
}
