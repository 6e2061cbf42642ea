import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What Linux says about a process, from /proc.
enum ProcStats {
    /// Resident set size, in bytes (`VmRSS` of /proc/PID/status).
    static func rss(_ pid: Int32) -> Int64? { statusField(pid, "VmRSS:") }

    /// Peak resident set size, in bytes (`VmHWM`).
    static func peakRSS(_ pid: Int32) -> Int64? { statusField(pid, "VmHWM:") }

    /// User plus system CPU time consumed so far, in seconds (fields 14 and 15 of /proc/PID/stat).
    static func cpuSeconds(_ pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // After the command name in parentheses: field 3 (state) is index 0, so utime (14) is 11, stime (15) is 12.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Open file descriptors (sockets included).
    static func openFiles(_ pid: Int32) -> Int? {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd"))?.count
    }

    private static func statusField(_ pid: Int32, _ key: String) -> Int64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return nil }
        let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard parts.count >= 2, let kib = Int64(parts[1]) else { return nil }
        return kib * 1024
    }
}

/// The machine the figures come from.
struct MachineInfo: Codable, Sendable {
    var cores: Int
    var memoryBytes: UInt64
    var kernel: String
    var cpuModel: String
    /// /proc/loadavg when the report was written: above the core count, something else shared the machine.
    var loadAverage: String

    static func current() -> MachineInfo {
        let kernel = (try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown"
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .flatMap { $0.split(separator: ":", maxSplits: 1).last }
            .map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown"
        return MachineInfo(cores: ProcessInfo.processInfo.activeProcessorCount,
                           memoryBytes: ProcessInfo.processInfo.physicalMemory, kernel: kernel, cpuModel: model,
                           loadAverage: load)
    }

    enum CodingKeys: String, CodingKey {
        case cores, kernel
        case memoryBytes = "memory_bytes"
        case cpuModel = "cpu_model"
        case loadAverage = "load_average"
    }
}
