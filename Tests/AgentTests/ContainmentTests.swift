import CSpawn
import Foundation
import Logging
@testable import PaddockAgent
import PaddockProtocol
import PaddockTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Tasks in cgroups, for real: on this machine kind (root, a hybrid cgroup layout) the agent has the v1
/// memory and pids controllers and a v2 tree with `cgroup.kill`. A host without them would fail these
/// tests loudly rather than skip them: containment is a promise of the agent's.
@Suite(.serialized) struct ContainmentTests {
    static let logger = Logger(label: "test.containment")

    static func containment(memory: TaskMemoryLimit = .requirement(marginPercent: 0)) throws -> Containment {
        var policy = ContainmentPolicy()
        policy.memory = memory
        let containment = Containment.detect(policy: policy, logger: logger)
        try #require(containment.isActive, "cgroups unavailable here: \(containment.summary)")
        return containment
    }

    /// Live (not zombie) processes whose environment carries `marker`.
    static func processes(marked marker: String) -> [pid_t] {
        let needle = Data("PADDOCK_TEST_MARK=\(marker)\0".utf8)
        return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid_t($0) }.filter { pid in
            guard let environ = ProcessLedger.readProcFile("/proc/\(pid)/environ"), environ.range(of: needle) != nil else { return false }
            return !ProcessTable.isZombie(pid)
        }
    }

    static func environment(_ marker: String) -> [String: String] {
        ["PATH": "/usr/bin:/bin", "PADDOCK_TEST_MARK": marker]
    }

    /// Waits (up to 30 s) for `condition`: the kernel reaps a killed tree in its own time.
    static func eventually(_ condition: () -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return condition()
    }

    @Test func aDaemonThatLeftItsProcessGroupDiesWhenItsTaskEnds() async throws {
        let containment = try Self.containment()
        let marker = "daemon-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let cgroup = try #require(try containment.makeCgroup(task: TaskID(rawValue: 9001), epoch: LeaseEpoch(1),
                                                            resources: ResourceVector(cpus: 1)))
        // The classic escape: a new session (so no process group signal reaches it) and a parent that exits.
        let child = try ChildProcess.launch(argv: ["sh", "-c", "setsid sleep 300 & echo started"],
                                            environment: Self.environment(marker), cwd: "/tmp", cgroup: cgroup)
                for await _ in child.output {}
        let ending = await child.ending()
        #expect(ending.status == .exited(0))
        #expect(try await Self.eventually { Self.processes(marked: marker).isEmpty }, "the setsid'd sleep outlived its task")
        // Emptied, the run's cgroup waits in the pool for the next run; closing removes it.
        #expect(cgroup.members().isEmpty)
        containment.close()
        #expect(!FileManager.default.fileExists(atPath: cgroup.dirs[0]), "the run's cgroup is removed at close")
    }

    /// A stop of a run that has ended (a cancel arriving just after its end) reaches nothing: not
    /// the run that now uses its emptied cgroup, nor whatever took its pid.
    @Test func aLateStopOfAnEndedRunDoesNotReachTheRunThatReusesItsCgroup() async throws {
        let containment = try Self.containment()
        let first = try #require(try containment.makeCgroup(task: TaskID(rawValue: 9020), epoch: LeaseEpoch(1),
                                                           resources: ResourceVector(cpus: 1)))
        let ended = try ChildProcess.launch(argv: ["/bin/true"], environment: Self.environment("late-1"), cwd: "/tmp",
                                            cgroup: first)
        for await _ in ended.output {}
        _ = await ended.ending()
        let second = try #require(try containment.makeCgroup(task: TaskID(rawValue: 9021), epoch: LeaseEpoch(1),
                                                            resources: ResourceVector(cpus: 1)))
        #expect(second.dirs == first.dirs, "the emptied cgroup is used again")
        let marker = "late-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let running = try ChildProcess.launch(argv: ["sleep", "300"], environment: Self.environment(marker), cwd: "/tmp",
                                              cgroup: second)
        #expect(try await Self.eventually { Self.processes(marked: marker).count == 1 })
        ended.signalGroup(SIGKILL)
        await ended.terminate(grace: .milliseconds(50))
        // kill(2) is delivered before it returns: a process it reached is dying now, not later.
        try await Task.sleep(for: .milliseconds(200))
        #expect(Self.processes(marked: marker).count == 1, "the late stop of the ended run killed the next run")
        await running.terminate(grace: .seconds(2))
        for await _ in running.output {}
        #expect(try await Self.eventually { Self.processes(marked: marker).isEmpty })
        containment.close()
    }

    /// A cgroup used again counts only its new run: no OOM kill, CPU time or memory peak of the run
    /// before it, and the new run's own limit.
    @Test func aReusedCgroupReportsOnlyItsNewRun() async throws {
        let containment = try Self.containment()
        let first = try #require(try containment.makeCgroup(task: TaskID(rawValue: 9010), epoch: LeaseEpoch(1),
                                                           resources: ResourceVector(cpus: 1, ram: 64 << 20)))
        let hog = try ChildProcess.launch(
            argv: ["sh", "-c", "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; head -c 400000000 /dev/zero | tail >/dev/null"],
            environment: Self.environment("reuse-1"), cwd: "/tmp", cgroup: first)
        for await _ in hog.output {}
        let hogEnding = await hog.ending()
        #expect(hogEnding.oomKilled)
        #expect(hogEnding.usage.cpuSeconds > 0.02, "cpu \(hogEnding.usage.cpuSeconds)")

        let second = try #require(try containment.makeCgroup(task: TaskID(rawValue: 9011), epoch: LeaseEpoch(1),
                                                            resources: ResourceVector(cpus: 2, ram: 256 << 20)))
        #expect(second.dirs == first.dirs, "the emptied cgroup is used again")
        #expect(second.memoryLimit == 256 << 20)
        if let (dir, v2) = second.memory, !v2 {
            #expect(TaskCgroup.number(dir + "/memory.limit_in_bytes") == 256 << 20)
        }
        let quiet = try ChildProcess.launch(argv: ["/bin/true"], environment: Self.environment("reuse-2"), cwd: "/tmp",
                                            cgroup: second)
        for await _ in quiet.output {}
        let quietEnding = await quiet.ending()
        #expect(quietEnding.status == .exited(0))
        #expect(!quietEnding.oomKilled, "the OOM kill was the first run's")
        #expect(quietEnding.usage.cpuSeconds < hogEnding.usage.cpuSeconds, "cpu \(quietEnding.usage.cpuSeconds)")
        #expect(quietEnding.usage.peakRSS < 32 << 20, "peak \(quietEnding.usage.peakRSS)")

        // Back to no limit: the limit goes too.
        let third = try #require(try containment.makeCgroup(task: TaskID(rawValue: 9012), epoch: LeaseEpoch(1),
                                                           resources: ResourceVector(cpus: 1)))
        #expect(third.memoryLimit == nil)
        if let (dir, v2) = third.memory, !v2 {
            #expect((TaskCgroup.number(dir + "/memory.limit_in_bytes") ?? 0) > 1 << 40)
        }
        third.recycle(waiting: .seconds(2))
        containment.close()
        #expect(!FileManager.default.fileExists(atPath: first.dirs[0]))
    }

    @Test func terminateStopsEveryProcessOfTheRunWhateverItsSession() async throws {
        let containment = try Self.containment()
        let marker = "stop-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let cgroup = try containment.makeCgroup(task: TaskID(rawValue: 9002), epoch: LeaseEpoch(1), resources: ResourceVector(cpus: 1))
        let child = try ChildProcess.launch(argv: ["sh", "-c", "setsid sleep 300 & sleep 300"],
                                            environment: Self.environment(marker), cwd: "/tmp", cgroup: cgroup)
        #expect(try await Self.eventually { Self.processes(marked: marker).count >= 2 })
        await child.terminate(grace: .seconds(2))
        for await _ in child.output {}
        #expect(try await Self.eventually { Self.processes(marked: marker).isEmpty })
        containment.close()
    }

    @Test func aTaskPastItsMemoryLimitIsKilledAndSaysOOM() async throws {
        let containment = try Self.containment()
        let cgroup = try #require(try containment.makeCgroup(task: TaskID(rawValue: 9003), epoch: LeaseEpoch(1),
                                                            resources: ResourceVector(cpus: 1, ram: 64 << 20)))
        #expect(cgroup.memoryLimit == 64 << 20)
        // tail keeps its last lines: 400 MB without a newline is one line of 400 MB in its memory.
        let child = try ChildProcess.launch(argv: ["sh", "-c", "head -c 400000000 /dev/zero | tail >/dev/null; echo survived"],
                                            environment: Self.environment("oom"), cwd: "/tmp", cgroup: cgroup)
        var output = Data()
        for await chunk in child.output { output.append(chunk) }
        let ending = await child.ending()
        #expect(ending.oomKilled)
        #expect(ending.usage.peakRSS >= 32 << 20, "the cgroup's peak is what the task held: \(ending.usage.peakRSS)")
        #expect(ending.usage.peakRSS <= 80 << 20)
        containment.close()
    }

    @Test func aRunWithinItsLimitIsMeasuredByItsCgroup() async throws {
        let containment = try Self.containment()
        let cgroup = try containment.makeCgroup(task: TaskID(rawValue: 9004), epoch: LeaseEpoch(1),
                                                resources: ResourceVector(cpus: 1, ram: 256 << 20))
        // CPU spent in a grandchild that the leader does not wait for still counts: the cgroup saw it.
        let child = try ChildProcess.launch(
            argv: ["sh", "-c", "(i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done) & wait"],
            environment: Self.environment("cpu"), cwd: "/tmp", cgroup: cgroup)
        for await _ in child.output {}
        let ending = await child.ending()
        #expect(ending.status == .exited(0))
        #expect(!ending.oomKilled)
        #expect(ending.usage.cpuSeconds > 0.05, "cpu \(ending.usage.cpuSeconds)")
        containment.close()
    }

    @Test func noLimitWhenTheTaskAsksForNoRAMOrThePolicySaysNone() throws {
        let containment = try Self.containment(memory: .none)
        let cgroup = try #require(try containment.makeCgroup(task: TaskID(rawValue: 9005), epoch: LeaseEpoch(1),
                                                            resources: ResourceVector(cpus: 1, ram: 64 << 20)))
        #expect(cgroup.memoryLimit == nil)
        cgroup.remove()
        #expect(TaskMemoryLimit.requirement(marginPercent: 25).bytes(forRequirement: 100 << 20) == 125 << 20)
        #expect(TaskMemoryLimit.requirement(marginPercent: 0).bytes(forRequirement: 0) == nil)
        #expect(TaskMemoryLimit("ram+25%") == .requirement(marginPercent: 25))
        #expect(TaskMemoryLimit("ram") == .requirement(marginPercent: 0))
        #expect(TaskMemoryLimit("none") == TaskMemoryLimit.none)
        #expect(TaskMemoryLimit("ram+") == nil)
        #expect(TaskMemoryLimit("25%") == nil)
        containment.close()
    }

    @Test func theLedgerKillsWhatARunLeftInItsCgroupAfterTheAgentDied() async throws {
        let containment = try Self.containment()
        let marker = "ledger-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let workDir = NSTemporaryDirectory() + "paddock-ledger-\(marker)"
        defer { try? FileManager.default.removeItem(atPath: workDir) }
        let cgroup = try #require(try containment.makeCgroup(task: TaskID(rawValue: 9006), epoch: LeaseEpoch(1),
                                                            resources: ResourceVector(cpus: 1)))
        // A run whose agent is gone: its leader reaped, a setsid'd process left in its cgroup (a process
        // outside the recorded process group, which only the cgroup still knows about).
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        let procs = try cgroup.openProcsFiles()
        defer { procs.forEach { _ = close($0) } }
        var pid: pid_t = 0, stage: Int32 = 0
        let words: [String] = ["sh", "-c", "setsid sleep 300 &"]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        let env: [UnsafeMutablePointer<CChar>?] = Self.environment(marker).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { argv.forEach { free($0) }; env.forEach { free($0) } }
        let rc = procs.withUnsafeBufferPointer { paddock_spawn_for_tests(&pid, argv, env, fds[1], $0, &stage) }
        close(fds[1]); close(fds[0])
        try #require(rc == 0)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        #expect(try await Self.eventually { Self.processes(marked: marker).count == 1 })
        let ledger = ProcessLedger(workDir: workDir)
        ledger.record(task: TaskID(rawValue: 9006), processGroup: pid, cgroup: cgroup.dirs)
        #expect(ledger.reapOrphans() >= 1)
        #expect(try await Self.eventually { Self.processes(marked: marker).isEmpty })
        #expect(!FileManager.default.fileExists(atPath: cgroup.dirs[0]))
        containment.close()
    }

    @Test func mountsAndMembershipsAreReadFromTheProcFiles() {
        let hybrid = """
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
        39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
        42 31 0:40 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
        """
        let mounts = Containment.mounts(mountinfo: hybrid)
        #expect(mounts.v2?.point == "/sys/fs/cgroup/unified")
        #expect(mounts.v1["memory"]?.point == "/sys/fs/cgroup/memory")
        #expect(mounts.v1["cpuacct"]?.point == "/sys/fs/cgroup/cpu,cpuacct")
        let pure = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate"
        #expect(Containment.mounts(mountinfo: pure).v2?.point == "/sys/fs/cgroup")
        #expect(Containment.mounts(mountinfo: pure).v1.isEmpty)

        let memberships = Containment.memberships(text: "4:memory:/process_api/x\n1:cpu,cpuacct:/\n0::/system.slice/paddock-agent.service\n")
        #expect(memberships.v2 == "/system.slice/paddock-agent.service")
        #expect(memberships.v1["memory"] == "/process_api/x")
        #expect(memberships.v1["cpuacct"] == "/")
        #expect(Containment.relative("/", to: "/") == "")
        #expect(Containment.relative("/a/b/", to: "/") == "/a/b")
        #expect(Containment.relative("/lxc/c1/a", to: "/lxc/c1") == "/a")
        #expect(Containment.unescape("/mnt/my\\040dir") == "/mnt/my dir")
    }
}

/// paddock_spawn with /tmp as cwd, for a test that needs a run with no ChildProcess around it.
func paddock_spawn_for_tests(_ pid: UnsafeMutablePointer<pid_t>, _ argv: [UnsafeMutablePointer<CChar>?],
                             _ env: [UnsafeMutablePointer<CChar>?], _ out: Int32, _ cgroups: UnsafeBufferPointer<Int32>,
                             _ stage: UnsafeMutablePointer<Int32>) -> Int32 {
    paddock_spawn(pid, "sh", argv, env, "/tmp", out, cgroups.baseAddress, Int32(cgroups.count), nil, stage)
}
