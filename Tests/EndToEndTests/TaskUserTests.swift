import Foundation
import PaddockAgent
import PaddockClient
import PaddockProtocol
import Testing

/// `--task-user` (issue 16: the agent's secrets out of its tasks' reach): tasks run as that user, in
/// a work directory of their own, and cannot read the agent's enrollment file.
extension EndToEnd { @Suite struct TaskUserTests {
    @Test func tasksRunAsTheTaskUserAndCannotReadTheAgentsSecrets() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        // With a warm child too, whatever this host's joins cost: both launch paths switch users.
        try farm.startAgent("guarded", ["--cpus", "1", "--task-user", "nobody", "--warm-children", "1"])
        try await eventually("guarded online", timeout: 30) { try await farm.agent(named: "guarded")?.state == .online }
        let secret = farm.dir + "/guarded/agent-enrollment.json"
        // The agent saves its credential once the master's answer arrives, a moment after the master lists it.
        try await eventually("the enrollment file", timeout: 10) { FileManager.default.fileExists(atPath: secret) }
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: secret)[.posixPermissions] as? Int)
        #expect(mode == 0o600)
        let job = try await farm.submit(JobSubmission(name: "guarded", tasks: [shell("""
            echo "uid $(id -u) home $HOME user $USER"
            if cat \(secret) >/dev/null 2>&1; then echo "secret read"; else echo "secret refused"; fi
            touch "$PADDOCK_WORK_DIR/made" && echo "work dir writable"
            """, name: "who")]))
        let tasks = try await farm.waitForJob(job.id, timeout: 60)
        #expect(tasks.map(\.state) == [.succeeded])
        let log = try await farm.logs(tasks[0].id)
        #expect(log.contains("uid 65534 home "), "\(log)")
        #expect(log.contains("user nobody"), "\(log)")
        #expect(log.contains("secret refused"), "\(log)")
        #expect(log.contains("work dir writable"), "\(log)")
    }

    /// The packaged unit's set-up, without systemd: the agent runs under a user of its own with the
    /// capabilities the unit gives it (`AmbientCapabilities=`), in a cgroup delegated to that user
    /// (`Delegate=yes`), and its tasks run as the task user. A task keeps none of the agent's
    /// capabilities, runs in the delegated subtree, cannot read the agent's secrets, and a cancel
    /// still reaches it (SIGTERM across users: CAP_KILL).
    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")))
    func anAgentUnderItsOwnUserRunsTasksAsTheTaskUserWithNoCapabilities() async throws {
        let own = try #require(TaskUser.lookUp("daemon"), "the daemon user plays the agent's own user")
        let farm = try Farm()
        try await farm.startMaster()
        let work = farm.dir + "/unprivileged"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        #expect(chown(work, own.uid, own.gid) == 0)
        let delegated = DelegatedCgroup(owner: own)
        defer { delegated?.remove() }
        let capabilities = "+setuid,+setgid,+chown,+kill,+dac_override,+fowner"
        let setpriv = ["/usr/bin/setpriv", "--reuid=\(own.uid)", "--regid=\(own.gid)", "--clear-groups",
                       "--inh-caps=\(capabilities)", "--ambient-caps=\(capabilities)"]
        // The agent enters its delegated cgroup before it becomes its user, as systemd starts a unit.
        let prefix = delegated.map { ["/bin/sh", "-c", "echo $$ >\"$0\" && exec \"$@\"", $0.path + "/cgroup.procs"] + setpriv } ?? setpriv
        try farm.startAgent("unprivileged", ["--cpus", "2", "--task-user", "nobody"], prefix: prefix)
        try await eventually("unprivileged online", timeout: 30) { try await farm.agent(named: "unprivileged")?.state == .online }
        let secret = work + "/agent-enrollment.json"
        try await eventually("the enrollment file", timeout: 10) { FileManager.default.fileExists(atPath: secret) }
        let owner = try #require(try FileManager.default.attributesOfItem(atPath: secret)[.ownerAccountID] as? Int)
        #expect(owner == Int(own.uid))

        let job = try await farm.submit(JobSubmission(name: "unprivileged", tasks: [shell("""
            echo "uid $(id -u)"
            grep -E '^Cap(Inh|Prm|Eff|Amb|Bnd)' /proc/self/status
            echo "cgroup $(grep '^0::' /proc/self/cgroup)"
            if cat \(secret) >/dev/null 2>&1; then echo "secret read"; else echo "secret refused"; fi
            """, name: "who")]))
        let tasks = try await farm.waitForJob(job.id, timeout: 60)
        #expect(tasks.map(\.state) == [.succeeded])
        let log = try await farm.logs(tasks[0].id)
        #expect(log.contains("uid 65534\n"), "\(log)")
        #expect(log.contains("secret refused"), "\(log)")
        let sets = log.split(separator: "\n").filter { $0.hasPrefix("Cap") && !$0.hasPrefix("CapBnd") }
        #expect(sets.count == 4, "\(log)")
        #expect(sets.allSatisfy { $0.hasSuffix("0000000000000000") }, "the task kept capabilities: \(log)")
        if let delegated {
            #expect(log.contains("cgroup 0::\(delegated.relative)/paddock-"), "\(log)")
        }

        // A cancel reaches the task user's process from the agent's user.
        let stubborn = try await farm.submit(JobSubmission(name: "stoppable", tasks: [shell("""
            trap 'echo "TERM from the agent"; exit 3' TERM
            echo started
            sleep 300 & wait
            """, name: "stoppable")]))
        let stoppable = try #require(stubborn.taskIDs?.first)
        try await eventually("the task runs", timeout: 30) { try await farm.logs(stoppable).contains("started") }
        _ = try await cli(farm, ["cancel", stoppable.description])
        try await eventually("the task is cancelled", timeout: 30) { try await farm.task(stoppable).state == .cancelled }
        try await eventually("its log says it had SIGTERM", timeout: 10) { try await farm.logs(stoppable).contains("TERM from the agent") }
        try await farm.terminate("unprivileged")
    }

    @Test func anUnknownTaskUserStopsTheAgentWithThatReason() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("confused", ["--cpus", "1", "--task-user", "paddock-no-such-user"])
        _ = try await farm.waitForLine(in: farm.dir + "/confused.log", containing: "--task-user: no user paddock-no-such-user")
    }
} }

/// A cgroup v2 directory handed to a user, as systemd's `Delegate=yes` hands a unit's to its `User=`:
/// the directory and its `cgroup.procs`, `cgroup.subtree_control` and `cgroup.threads` are the user's.
/// Nil where this host has no writable cgroup2 hierarchy.
struct DelegatedCgroup {
    /// Its directory, and its path inside the hierarchy (as /proc/PID/cgroup names it).
    let path: String
    let relative: String

    init?(owner: TaskUser) {
        let mountinfo = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        guard let line = mountinfo.split(separator: "\n").first(where: { $0.contains(" - cgroup2 ") }) else { return nil }
        let fields = line.split(separator: " ")
        guard fields.count > 4 else { return nil }
        relative = "/paddock-delegated-\(UUID().uuidString.prefix(8))"
        path = String(fields[4]) + relative
        guard mkdir(path, 0o755) == 0 else { return nil }
        for file in ["", "/cgroup.procs", "/cgroup.subtree_control", "/cgroup.threads"] {
            _ = chown(path + file, owner.uid, owner.gid)
        }
    }

    /// Removes what the agent left under it, deepest first (cgroups empty of processes by now).
    func remove() {
        func subdirectories(_ dir: String) -> [String] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            return names.map { dir + "/" + $0 }.filter {
                var isDirectory: ObjCBool = false
                return FileManager.default.fileExists(atPath: $0, isDirectory: &isDirectory) && isDirectory.boolValue
            }
        }
        func removeTree(_ dir: String) {
            subdirectories(dir).forEach(removeTree)
            rmdir(dir)
        }
        removeTree(path)
    }
}
