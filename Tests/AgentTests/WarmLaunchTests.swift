import Foundation
@testable import PaddockAgent
import PaddockProtocol
import PaddockTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Launches through warm children (a child that joined its cgroup before its task was known), for
/// real, in the serialized containment suite: they share its cgroup directories.
extension ContainmentTests {
    /// Waits until the warm child of `cgroup` has joined it, and returns its pid.
    static func warmMember(of cgroup: TaskCgroup) async throws -> pid_t {
        #expect(try await eventually { cgroup.members().count == 1 }, "the warm child never joined \(cgroup.dirs)")
        return try #require(cgroup.members().first)
    }

    @Test func aWarmChildRunsItsTaskInItsCgroupAsALaunchWould() async throws {
        let containment = try Self.containment()
        containment.keepWarm(2)
        let run = try containment.prepareRun(task: TaskID(rawValue: 9030), epoch: LeaseEpoch(1),
                                             resources: ResourceVector(cpus: 1, ram: 64 << 20))
        let warm = try #require(run.warm, "a warm child waits after keepWarm")
        let cgroup = try #require(run.cgroup)
        #expect(cgroup.dirs == warm.cgroup.dirs)
        #expect(cgroup.memoryLimit == 64 << 20, "the run's own limit, written when the run took the cgroup")
        if let (dir, v2) = cgroup.memory, !v2 {
            #expect(TaskCgroup.number(dir + "/memory.limit_in_bytes") == 64 << 20)
        }
        let waiting = try await Self.warmMember(of: cgroup)
        let workDir = NSTemporaryDirectory() + "paddock-warm-\(getpid())"
        try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: workDir) }
        let marker = "warm-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        // Everything a launch promises: its cgroup, its own process group, stdin from /dev/null, the
        // output merged, the given cwd and environment only.
        let script = """
            echo "pid $$"; echo "pgid $(cut -d' ' -f5 /proc/$$/stat)"; echo "stdin $(readlink /proc/$$/fd/0)"
            echo "cwd $(pwd)"; echo "mark $PADDOCK_TEST_MARK"; echo "home ${HOME:-unset}"; echo oops >&2
            grep -c '\(cgroup.dirs[0].split(separator: "/").last ?? "")' /proc/$$/cgroup
            """
        let child = try ChildProcess.launch(argv: ["sh", "-c", script], environment: Self.environment(marker),
                                            cwd: workDir, cgroup: cgroup, warm: warm)
        containment.replenish()
        #expect(child.pid == waiting, "the task runs in the process that waited in its cgroup")
        var output = Data()
        for await chunk in child.output { output.append(chunk) }
        let ending = await child.ending()
        let text = String(decoding: output, as: UTF8.self)
        #expect(ending.status == .exited(0), "\(text)")
        #expect(text.contains("pid \(child.pid)\n"), "\(text)")
        #expect(text.contains("pgid \(child.pid)\n"), "\(text)")
        #expect(text.contains("stdin /dev/null\n"), "\(text)")
        #expect(text.contains("cwd \(workDir)\n"), "\(text)")
        #expect(text.contains("mark \(marker)\n"), "\(text)")
        #expect(text.contains("home unset\n"), "only the given environment: \(text)")
        #expect(text.contains("oops\n"), "stderr merged: \(text)")
        // One line per hierarchy the agent uses: the task joined every one of them.
        #expect(text.hasSuffix("\(cgroup.dirs.count)\n"), "\(text)")
        #expect(ending.usage.peakRSS < 32 << 20, "peak \(ending.usage.peakRSS)")

        // The used child was replaced: the next run finds one waiting too.
        let next = try containment.prepareRun(task: TaskID(rawValue: 9031), epoch: LeaseEpoch(1), resources: ResourceVector(cpus: 1))
        #expect(next.warm != nil)
        #expect(next.cgroup?.memoryLimit == nil, "a run with no RAM asked has no limit")
        next.warm?.dismiss()
        next.cgroup?.remove(waiting: .seconds(5))
        containment.close()
        #expect(!FileManager.default.fileExists(atPath: cgroup.dirs[0]))
    }

    /// The signal lines of `/proc/PID/status` as the task sees them (`cat` reads its own).
    static func signalState(of child: ChildProcess) async -> [String: String] {
        var output = Data()
        for await chunk in child.output { output.append(chunk) }
        _ = await child.ending()
        var lines: [String: String] = [:]
        for line in String(decoding: output, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, ["SigBlk", "SigIgn", "SigCgt"].contains(String(parts[0])) {
                lines[String(parts[0])] = parts[1].trimmingCharacters(in: .whitespaces)
            }
        }
        return lines
    }

    /// A task starts as a fresh process would: no signal blocked, ignored or caught, whatever the
    /// agent does with them. The warm child sets its dispositions while it waits, not after its
    /// "go": that must not leave the agent's ignored SIGPIPE, its blocked mask or the runtime's
    /// crash handlers to the task, launched warm or cold. (Under `swift test` the test process has
    /// signal 32 ignored, one glibc's `sigaction` refuses to change: the reset uses the system call.)
    @Test func aTaskStartsWithDefaultSignalsWarmOrCold() async throws {
        // What the agent process has: SIGPIPE ignored (NIO does the same), the Swift runtime's
        // backtracer may hold handlers for crashes.
        signal(SIGPIPE, SIG_IGN)
        let containment = try Self.containment()
        containment.keepWarm(1)
        defer { containment.close() }
        let zero = "0000000000000000"
        let expected = ["SigBlk": zero, "SigIgn": zero, "SigCgt": zero]

        let warmRun = try containment.prepareRun(task: TaskID(rawValue: 9040), epoch: LeaseEpoch(1), resources: ResourceVector(cpus: 1))
        let warm = try #require(warmRun.warm, "a warm child waits after keepWarm")
        let cgroup = try #require(warmRun.cgroup)
        _ = try await Self.warmMember(of: cgroup)
        let warmChild = try ChildProcess.launch(argv: ["cat", "/proc/self/status"], environment: Self.environment("signals"),
                                                cwd: "/", cgroup: cgroup, warm: warm)
        #expect(await Self.signalState(of: warmChild) == expected, "launched warm")
        cgroup.remove(waiting: .seconds(5))

        let coldChild = try ChildProcess.launch(argv: ["cat", "/proc/self/status"], environment: Self.environment("signals"), cwd: "/")
        #expect(await Self.signalState(of: coldChild) == expected, "launched cold")
    }

    @Test func aWarmLaunchOfAMissingProgramFailsAndLeavesNothing() async throws {
        let containment = try Self.containment()
        containment.keepWarm(1)
        let run = try containment.prepareRun(task: TaskID(rawValue: 9032), epoch: LeaseEpoch(1), resources: ResourceVector(cpus: 1))
        let cgroup = try #require(run.cgroup)
        let waiting = try await Self.warmMember(of: cgroup)
        #expect(throws: LaunchError.self) {
            try ChildProcess.launch(argv: ["/nonexistent/paddock-no-such-program"], environment: Self.environment("missing"),
                                    cwd: "/tmp", cgroup: cgroup, warm: run.warm)
        }
        do {
            _ = try ChildProcess.launch(argv: ["sh", "-c", "true"], environment: Self.environment("missing"),
                                        cwd: "/nonexistent-dir", cgroup: cgroup, warm: run.warm)
            Issue.record("a consumed warm child launched again")
        } catch {
            // Consumed by the failed launch: this one ran cold, and its cwd does not exist.
            #expect(error.description.contains("/nonexistent-dir"), "\(error.description)")
        }
        // The failed child was reaped: no zombie is left, and its cgroup empties.
        #expect(try await Self.eventually { !ProcessTable.exists(waiting) }, "the failed warm child \(waiting) was not reaped")
        #expect(cgroup.members().isEmpty)
        cgroup.remove(waiting: .seconds(5))
        containment.close()
    }

    @Test func warmChildrenEndWhenTheAgentClosesItsContainment() async throws {
        let containment = try Self.containment()
        containment.keepWarm(3)
        let waiting = containment.warm.waitingCgroups()
        #expect(waiting.count == 3)
        var pids: [pid_t] = []
        for cgroup in waiting { pids.append(try await Self.warmMember(of: cgroup)) }
        let dirs = waiting.map { $0.dirs[0] }
        #expect(Set(pids).count == 3)
        containment.close()
        for (pid, dir) in zip(pids, dirs) {
            #expect(try await Self.eventually { !ProcessTable.exists(pid) }, "warm child \(pid) outlived the agent's close")
            #expect(!FileManager.default.fileExists(atPath: dir))
        }
    }

    /// `--warm-children auto`: children wait only where this host makes a join wait (the measured
    /// time, in the decision it logs, says which); either way a run launches.
    @Test func autoKeepsWarmChildrenOnlyWhereJoiningACgroupIsSlow() async throws {
        let containment = try Self.containment()
        let decided = try #require(containment.keepWarm(2, onlyIfJoiningIsSlow: true))
        let figure = try #require(decided.split(separator: " ").firstIndex(of: "took").map { decided.split(separator: " ")[$0 + 1] })
        let took = try #require(Double(figure), "\(decided)")
        let waiting = containment.warm.waitingCgroups().count
        if took >= 2 {
            #expect(waiting == 2, "\(decided): \(waiting) waiting (the measuring child and one more)")
            #expect(decided.contains("wait in their cgroups"), "\(decided)")
        } else {
            #expect(waiting == 0, "\(decided): \(waiting) waiting")
            #expect(decided.contains("launched straight into"), "\(decided)")
        }
        let run = try containment.prepareRun(task: TaskID(rawValue: 9033), epoch: LeaseEpoch(1), resources: ResourceVector(cpus: 1))
        let child = try ChildProcess.launch(argv: ["/bin/true"], environment: Self.environment("auto"), cwd: "/tmp",
                                            cgroup: run.cgroup, warm: run.warm)
        containment.replenish()
        for await _ in child.output {}
        #expect(await child.ending().status == .exited(0))
        containment.close()
    }

    /// The child that measured the join is kept beside those started for the target: as many wait
    /// as asked, and a used one is replaced.
    @Test func anAdoptedChildCountsTowardsTheTarget() async throws {
        let containment = try Self.containment()
        let cgroup = try #require(try containment.makeCgroup(task: TaskID(rawValue: 9034), epoch: LeaseEpoch(1),
                                                            resources: ResourceVector(cpus: 1)))
        let probe = try #require(WarmChild(cgroup: cgroup))
        containment.warm.setTarget(3)
        #expect(containment.warm.adopt(probe))
        containment.replenish()
        #expect(containment.warm.waitingCgroups().count == 3)
        let taken = try #require(containment.warm.take())
        taken.dismiss()
        taken.cgroup.remove(waiting: .seconds(5))
        containment.replenish()
        #expect(containment.warm.waitingCgroups().count == 3, "the used child is replaced")
        containment.close()
    }
}
