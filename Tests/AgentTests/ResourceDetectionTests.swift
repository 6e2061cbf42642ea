import Foundation
@testable import PaddockAgent
import Testing

/// Detected resources equal what the host says (issue: resources detected, not typed).
@Suite struct ResourceDetectionTests {
    func shell(_ command: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func cpusAreWhatNprocSaysWithinTheCgroupQuota() throws {
        let nproc = try #require(Int(try shell("nproc")))
        let quota = ResourceDetection.cgroupCPUQuota()
        let expected = quota.map { min(nproc, Int($0.rounded(.up))) } ?? nproc
        #expect(ResourceDetection.cpus() == max(1, expected))
    }

    @Test func ramIsMemTotalOrTheCgroupLimitLessTheReserve() throws {
        let kib = try #require(Int64(try shell("awk '/^MemTotal:/ {print $2}' /proc/meminfo")))
        let total = min(kib * 1024, ResourceDetection.cgroupMemoryLimit() ?? .max)
        #expect(ResourceDetection.ram(reserve: 0) == total)
        #expect(ResourceDetection.ram(reserve: 1 << 30) == max(total / 4, total - (1 << 30)))
    }

    @Test func cpuListsParse() {
        #expect(ResourceDetection.parseCPUList("0-3,8,10-11") == 7)
        #expect(ResourceDetection.parseCPUList("0") == 1)
        #expect(ResourceDetection.parseCPUList("3-1") == nil)
    }

    @Test func noGPUsWithoutNvidiaSMI() {
        if HostProbe.executable(named: "nvidia-smi") == nil { #expect(ResourceDetection.gpus() == 0) }
    }
}
