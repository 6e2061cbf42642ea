import Foundation
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

    @Test func anUnknownTaskUserStopsTheAgentWithThatReason() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("confused", ["--cpus", "1", "--task-user", "paddock-no-such-user"])
        _ = try await farm.waitForLine(in: farm.dir + "/confused.log", containing: "--task-user: no user paddock-no-such-user")
    }
} }
