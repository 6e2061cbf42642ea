import Foundation
import PaddockProtocol

/// What this host offers when the agent is not told: the CPUs this process may run on (its
/// affinity, within the cgroup's CPU quota), its RAM (the cgroup's limit, else MemTotal) minus
/// a reserve for the host, and the GPUs nvidia-smi lists.
public enum ResourceDetection {
    public static func cpus() -> Int {
        let allowed = affinityCount() ?? ProcessInfo.processInfo.activeProcessorCount
        guard let quota = cgroupCPUQuota() else { return max(1, allowed) }
        return max(1, min(allowed, Int(quota.rounded(.up))))
    }

    public static func ram(reserve: Int64) -> Int64 {
        let total = memTotal() ?? Int64(ProcessInfo.processInfo.physicalMemory)
        let limit = cgroupMemoryLimit().map { min($0, total) } ?? total
        return max(limit / 4, limit - reserve)  // a reserve larger than the host would leave nothing: keep a quarter
    }

    public static func gpus() -> Int {
        nvidiaSMI(query: "index")?.count ?? 0
    }

    /// MiB of memory on each GPU, the least of them (OpenJD's `amount.worker.gpu.memory`: what a task
    /// may count on whichever GPU it gets); nil without GPUs.
    public static func gpuMemoryMiB() -> Double? {
        nvidiaSMI(query: "memory.total")?.compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }.min()
    }

    /// One line per GPU of `nvidia-smi --query-gpu=QUERY` (plain numbers), or nil where it does not run.
    static func nvidiaSMI(query: String) -> [String]? {
        guard HostProbe.executable(named: "nvidia-smi") != nil else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["nvidia-smi", "--query-gpu=\(query)", "--format=csv,noheader,nounits"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).map(String.init)
    }

    /// CPUs in this process's affinity mask (`Cpus_allowed_list` of /proc/self/status).
    static func affinityCount() -> Int? {
        guard let status = ProcessLedger.readProcFile("/proc/self/status").map({ String(decoding: $0, as: UTF8.self) }),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") }) else { return nil }
        return parseCPUList(String(line.dropFirst("Cpus_allowed_list:".count)))
    }

    /// `0-3,8,10-11` → 7.
    static func parseCPUList(_ text: String) -> Int? {
        var count = 0
        for part in text.trimmingCharacters(in: .whitespaces).split(separator: ",") {
            let bounds = part.split(separator: "-").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            switch bounds.count {
            case 1: count += 1
            case 2 where bounds[1] >= bounds[0]: count += bounds[1] - bounds[0] + 1
            default: return nil
            }
        }
        return count > 0 ? count : nil
    }

    static func memTotal() -> Int64? {
        guard let text = ProcessLedger.readProcFile("/proc/meminfo").map({ String(decoding: $0, as: UTF8.self) }),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemTotal:") }),
              let kib = line.split(separator: " ").dropFirst().first.flatMap({ Int64($0) }) else { return nil }
        return kib * 1024
    }

    /// The cgroup (v2, else v1) directory of this process for a controller.
    static func cgroupFile(_ v2Name: String, v1Controller: String, v1Name: String) -> String? {
        guard let text = ProcessLedger.readProcFile("/proc/self/cgroup").map({ String(decoding: $0, as: UTF8.self) }) else { return nil }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            if fields[0] == "0" && fields[1].isEmpty {
                return "/sys/fs/cgroup" + (fields[2] == "/" ? "" : String(fields[2])) + "/" + v2Name
            }
            if fields[1].split(separator: ",").contains(Substring(v1Controller)) {
                return "/sys/fs/cgroup/\(v1Controller)" + (fields[2] == "/" ? "" : String(fields[2])) + "/" + v1Name
            }
        }
        return nil
    }

    /// CPUs the cgroup's quota allows (`cpu.max` "QUOTA PERIOD"), nil when unlimited.
    static func cgroupCPUQuota() -> Double? {
        if let path = cgroupFile("cpu.max", v1Controller: "cpu", v1Name: "cpu.cfs_quota_us"),
           let text = ProcessLedger.readProcFile(path).map({ String(decoding: $0, as: UTF8.self) }) {
            let fields = text.split(whereSeparator: \.isWhitespace)
            if path.hasSuffix("cpu.max"), fields.count == 2, let quota = Double(fields[0]), let period = Double(fields[1]), period > 0 {
                return quota / period
            }
            if path.hasSuffix("cfs_quota_us"), let quota = fields.first.flatMap({ Double($0) }), quota > 0,
               let periodText = ProcessLedger.readProcFile(path.replacingOccurrences(of: "quota", with: "period"))
                .map({ String(decoding: $0, as: UTF8.self) }),
               let period = Double(periodText.trimmingCharacters(in: .whitespacesAndNewlines)), period > 0 {
                return quota / period
            }
        }
        return nil
    }

    /// The cgroup's memory limit (`memory.max`), nil when unlimited.
    static func cgroupMemoryLimit() -> Int64? {
        guard let path = cgroupFile("memory.max", v1Controller: "memory", v1Name: "memory.limit_in_bytes"),
              let text = ProcessLedger.readProcFile(path).map({ String(decoding: $0, as: UTF8.self) }),
              let limit = Int64(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return nil }
        return limit < (1 << 60) ? limit : nil  // v1 says "no limit" with a huge number
    }
}
