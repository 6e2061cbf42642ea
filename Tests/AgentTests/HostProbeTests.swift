import Foundation
@testable import PaddockAgent
import PaddockProtocol
import PaddockTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Host metrics against the host itself: what the probe reports must be what /proc and statvfs say.
@Suite struct HostProbeTests {
    let workDir: String

    init() throws {
        workDir = try TestDirectory.makeUntilExit("hostprobe")
    }

    // MARK: - Against the host

    @Test func totalRAMIsMemTotal() async throws {
        let meminfo = try #require(ProcessLedger.readProcFile("/proc/meminfo"))
        let line = try #require(String(decoding: meminfo, as: UTF8.self).split(separator: "\n")
            .first { $0.hasPrefix("MemTotal:") })
        let kilobytes = try #require(Int64(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
        let memory = await HostProbe(workDir: workDir, nvidiaSMI: nil).sample().memory
        #expect(memory.total == kilobytes * 1024)
        #expect(memory.available > 0 && memory.available <= memory.total)
        #expect(memory.used == memory.total - memory.available)
        #expect(memory.swapUsed >= 0 && memory.swapUsed <= memory.swapTotal)
    }

    @Test func diskIsStatvfsOfTheWorkDir() async throws {
        let disk = await HostProbe(workDir: workDir, nvidiaSMI: nil).sample().disk
        var info = statvfs()
        try #require(statvfs(workDir, &info) == 0)
        let blockSize = Int64(info.f_frsize)
        #expect(disk.path == workDir)
        #expect(disk.total == Int64(info.f_blocks) * blockSize)
        // Other tests and processes write meanwhile: free may have moved a little.
        #expect(abs(disk.free - Int64(info.f_bavail) * blockSize) <= 64 << 20)
        #expect(disk.free > 0 && disk.free <= disk.total)
    }

    @Test func cpuBusyRisesWhileACoreSpins() async throws {
        let probe = HostProbe(workDir: workDir, nvidiaSMI: nil)
        _ = await probe.sample()
        let spinner = try ChildProcess.launch(argv: ["/bin/sh", "-c", "while :; do :; done"],
                                              environment: [:], cwd: workDir)
        try await Task.sleep(for: .milliseconds(1200))
        let busy = await probe.sample().cpu
        spinner.signalGroup(SIGKILL)
        for await _ in spinner.output {}
        _ = await spinner.waitForExit()

        #expect(busy.cores == sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        #expect(busy.perCore.count == busy.cores)
        // One of `cores` cores spun the whole interval: at least 40% of one core's share of the host,
        // whatever else a busy machine was doing.
        let oneCore = 100 / Double(max(1, busy.cores))
        #expect(busy.busyPercent >= 0.4 * oneCore, "busy \(busy.busyPercent)% on \(busy.cores) cores")
        #expect(busy.busyPercent <= 100)
        #expect(busy.perCore.allSatisfy { $0 >= 0 && $0 <= 100 })
        #expect((busy.perCore.max() ?? 0) >= 40, "per core \(busy.perCore)")
    }

    @Test func loadAveragesParse() async throws {
        let text = String(decoding: try #require(ProcessLedger.readProcFile("/proc/loadavg")), as: UTF8.self)
        #expect(HostProbe.parseLoadavg(text) != nil)
        let load = await HostProbe(workDir: workDir, nvidiaSMI: nil).sample().load
        #expect([load.one, load.five, load.fifteen].allSatisfy { $0.isFinite && $0 >= 0 })
    }

    @Test func noGPUIsNoneNotAnError() async throws {
        let probe = HostProbe(workDir: workDir)  // looks nvidia-smi up on PATH, as the agent does
        let gpus = await probe.sample().gpus
        if HostProbe.executable(named: "nvidia-smi") == nil {
            #expect(probe.nvidiaSMI == nil)
            #expect(gpus == [])
        }
    }

    @Test func gpusComeFromNvidiaSMI() async throws {
        let script = workDir + "/nvidia-smi"
        try """
            #!/bin/sh
            case "$*" in *--query-gpu=index,name,utilization.gpu,memory.used,memory.total*) ;; *) exit 2 ;; esac
            echo '0, NVIDIA GeForce RTX 3090, 35, 1024, 24576'
            echo '1, NVIDIA A100-SXM4-40GB, [N/A], 0, 40960'
            """.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        #expect(HostProbe.executable(named: "nvidia-smi", path: "/nonexistent:" + workDir) == script)
        // A script just written may not run at once (ETXTBSY while another test's spawned child still holds
        // a copy of the writer's descriptor): try a few fresh probes, as a failed query backs off minutes.
        var gpus: [HostMetrics.GPU] = []
        for _ in 0..<20 where gpus.isEmpty {
            gpus = await HostProbe(workDir: workDir, nvidiaSMI: script).sample().gpus
            if gpus.isEmpty { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(gpus == [
            HostMetrics.GPU(index: 0, name: "NVIDIA GeForce RTX 3090", utilizationPercent: 35,
                            memoryTotal: 24576 << 20, memoryUsed: 1024 << 20),
            HostMetrics.GPU(index: 1, name: "NVIDIA A100-SXM4-40GB", utilizationPercent: nil,
                            memoryTotal: 40960 << 20, memoryUsed: 0),
        ])
    }

    @Test func aHungOrFailingNvidiaSMIIsNoGPU() async throws {
        let hung = workDir + "/hung-smi", failing = workDir + "/failing-smi"
        try "#!/bin/sh\nexec sleep 600\n".write(toFile: hung, atomically: true, encoding: .utf8)
        try "#!/bin/sh\necho 'NVIDIA-SMI has failed'\nexit 9\n".write(toFile: failing, atomically: true, encoding: .utf8)
        chmod(hung, 0o755)
        chmod(failing, 0o755)
        let started = ContinuousClock.now
        let hungProbe = HostProbe(workDir: workDir, nvidiaSMI: hung, gpuTimeout: .milliseconds(500))
        #expect(await hungProbe.sample().gpus == [])
        // The query is stopped at its timeout, long before the fake's 600 s (the bound is loose on purpose:
        // on a loaded 2-core machine a test can be stalled for many seconds).
        #expect(ContinuousClock.now - started < .seconds(120))
        #expect(await HostProbe(workDir: workDir, nvidiaSMI: failing).sample().gpus == [])
    }

    @Test func usageOfATaskCountsItsWholeProcessGroup() async throws {
        let child = try ChildProcess.launch(
            argv: ["/bin/sh", "-c", "sleep 300 & x=0; while [ $x -lt 200000 ]; do x=$((x+1)); done; wait"],
            environment: ["PATH": "/usr/bin:/bin"], cwd: workDir)
        var usage = TaskUsage.zero
        // The group lives (sleep 300) until the test kills it: a loaded machine that stalls this loop
        // for a long time does not see it end first (it once did, with a 20 s sleep).
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            usage = HostProbe.usage(ofProcessGroup: child.pid)
            if usage.processes >= 2 && usage.cpuSeconds > 0 { break }
        }
        #expect(usage.processes >= 2, "\(usage)")
        #expect(usage.cpuSeconds > 0, "\(usage)")
        #expect(usage.rss > 0, "\(usage)")
        #expect(usage.peakRSS == usage.rss)
        #expect(HostProbe.usage(ofProcessGroups: [child.pid, 999_999_999]).count == 2)
        child.signalGroup(SIGKILL)
        for await _ in child.output {}
        _ = await child.waitForExit()
        #expect(HostProbe.usage(ofProcessGroup: child.pid).processes == 0)
    }

    // MARK: - Parsing, on canned text

    @Test func parsesProcStat() throws {
        let text = """
            cpu  1000 10 500 8000 400 0 50 40 7 0
            cpu0 600 5 300 3800 200 0 40 20 7 0
            cpu1 400 5 200 4200 200 0 10 20 0 0
            intr 123456 0 0
            ctxt 987654
            btime 1700000000
            processes 4242
            procs_running 2
            """
        let stat = try #require(HostProbe.parseCPUStat(text))
        // total = user..steal (guest is inside user already); busy = total − idle − iowait.
        #expect(stat.host == HostProbe.CPUTicks(busy: 1600, total: 10000))
        #expect(stat.cores[0] == HostProbe.CPUTicks(busy: 965, total: 4965))
        #expect(stat.cores[1] == HostProbe.CPUTicks(busy: 635, total: 5035))
        #expect(stat.cores.count == 2)

        let later = try #require(HostProbe.parseCPUStat("""
            cpu  1150 10 550 8100 400 0 50 40 0 0
            cpu0 700 5 350 3800 200 0 40 20 0 0
            cpu1 450 5 200 4250 200 0 10 20 0 0
            """))
        let shares = HostProbe.cpuShares(from: stat, to: later)
        #expect(shares.cores == 2)
        #expect(shares.busyPercent == 200.0 / 300.0 * 100)
        #expect(shares.perCore == [100, 50])
        // The first sample is since boot; counters that went backwards give 0, never a negative share.
        #expect(HostProbe.cpuShares(from: nil, to: stat).busyPercent == 16)
        #expect(HostProbe.busyPercent(from: later.host, to: stat.host) == 0)
        #expect(HostProbe.parseCPUStat("intr 1 2 3\n") == nil)
    }

    @Test func parsesMeminfo() {
        let memory = HostProbe.parseMeminfo("""
            MemTotal:       16318320 kB
            MemFree:         1000000 kB
            MemAvailable:    8000000 kB
            Buffers:          200000 kB
            Cached:          5000000 kB
            SwapCached:            0 kB
            SwapTotal:       2097148 kB
            SwapFree:        2000000 kB
            HugePages_Total:       0
            """)
        #expect(memory == HostMetrics.Memory(total: 16318320 * 1024, used: (16318320 - 8000000) * 1024,
                                             available: 8000000 * 1024, swapTotal: 2097148 * 1024,
                                             swapUsed: (2097148 - 2000000) * 1024))
        // Before MemAvailable (Linux < 3.14): free + buffers + page cache.
        let old = HostProbe.parseMeminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n")
        #expect(old.available == 400 * 1024)
        #expect(old.swapTotal == 0 && old.swapUsed == 0)
    }

    @Test func parsesLoadavgNvidiaSMIAndProcessStat() throws {
        #expect(HostProbe.parseLoadavg("0.52 1.58 10.59 1/234 5678\n")
                == HostMetrics.Load(one: 0.52, five: 1.58, fifteen: 10.59))
        #expect(HostProbe.parseLoadavg("") == nil)

        let gpus = HostProbe.parseNvidiaSMI("0, Tesla T4, 100, 15, 15360\n1, Odd, Name, [Not Supported], 3, 7\nNo devices were found\n")
        #expect(gpus.map(\.index) == [0, 1])
        #expect(gpus[1].name == "Odd,Name")
        #expect(gpus[1].utilizationPercent == nil && gpus[1].memoryUsed == 3 << 20 && gpus[1].memoryTotal == 7 << 20)
        #expect(HostProbe.parseNvidiaSMI("") == [])

        // A command name with spaces and a parenthesis; utime 250, stime 30, cutime 15, cstime 5; rss 1234 pages.
        let stat = "4242 (my (odd) cmd) S 1 4240 4240 0 -1 4194560 100 0 0 0 250 30 15 5 20 0 1 0 12345 8000000 1234 "
            + "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0"
        #expect(HostProbe.parseProcessStat(stat)
                == HostProbe.ProcessStat(group: 4240, isZombie: false, ticks: 300, residentPages: 1234))
        let zombie = stat.replacingOccurrences(of: ") S ", with: ") Z ")
        #expect(HostProbe.parseProcessStat(zombie)?.isZombie == true)
        #expect(HostProbe.parseProcessStat("garbage") == nil)
    }

    // MARK: - On the wire

    @Test func metricsRoundTripInSnakeCase() throws {
        let metrics = HostMetrics(
            at: Date(timeIntervalSince1970: 1_700_000_000),
            cpu: .init(busyPercent: 12.5, perCore: [20, 5], cores: 2),
            load: .init(one: 0.5, five: 0.25, fifteen: 0.125),
            memory: .init(total: 8 << 30, used: 3 << 30, available: 5 << 30, swapTotal: 1 << 30, swapUsed: 0),
            disk: .init(path: "/var/lib/paddock", total: 100 << 30, free: 40 << 30),
            gpus: [.init(index: 0, name: "T4", utilizationPercent: nil, memoryTotal: 15 << 30, memoryUsed: 1 << 20)])
        let data = try WireJSON.encoder().encode(metrics)
        let text = String(decoding: data, as: UTF8.self)
        for key in ["busy_percent", "per_core", "swap_total", "swap_used", "utilization_percent\":null",
                    "memory_total", "memory_used", "\"at\":\"2023-11-14T22:13:20Z\""] {
            #expect(text.contains(key), "\(key) in \(text)")
        }
        #expect(try WireJSON.decoder().decode(HostMetrics.self, from: data) == metrics)

        let usage = TaskUsage(cpuSeconds: 1.5, rss: 4096, peakRSS: 8192, processes: 3)
        let usageText = String(decoding: try WireJSON.encoder().encode(usage), as: UTF8.self)
        #expect(usageText == #"{"cpu_seconds":1.5,"peak_rss":8192,"processes":3,"rss":4096}"#)
        #expect(try WireJSON.decoder().decode(TaskUsage.self, from: Data(usageText.utf8)) == usage)
        #expect(usage.updated(with: TaskUsage(cpuSeconds: 1, rss: 100, peakRSS: 100, processes: 1))
                == TaskUsage(cpuSeconds: 1.5, rss: 100, peakRSS: 8192, processes: 1))

        // What an agent could not have measured is refused, not stored.
        let bad = text.replacingOccurrences(of: "\"busy_percent\":12.5", with: "\"busy_percent\":250")
        #expect(throws: DecodingError.self) { try WireJSON.decoder().decode(HostMetrics.self, from: Data(bad.utf8)) }
        let unknown = #"{"cpu_seconds":1,"peak_rss":0,"processes":0,"rss":0,"rsss":1}"#
        #expect(throws: DecodingError.self) { try WireJSON.decoder().decode(TaskUsage.self, from: Data(unknown.utf8)) }
    }
}
