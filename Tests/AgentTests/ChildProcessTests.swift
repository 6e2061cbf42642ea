import Foundation
@testable import PaddockAgent
import PaddockTestSupport
import Testing

/// The process launcher, with real child processes.
@Suite struct ChildProcessTests {
    /// `--task-user`: the child becomes the user (groups, gid, uid) before it runs the task.
    @Test func aTaskUserRunsTheChildAsThatUser() async throws {
        let nobody = try #require(TaskUser.lookUp("nobody"))
        #expect(TaskUser.lookUp(String(nobody.uid)) == nobody, "a uid names the same user")
        let child = try ChildProcess.launch(argv: ["sh", "-c", "echo $(id -u) $(id -g) $(id -G)"], environment: ["PATH": "/usr/bin:/bin"],
                                            cwd: "/tmp", user: nobody)
        var output = Data()
        for await chunk in child.output { output.append(chunk) }
        #expect(await child.waitForExit() == .exited(0))
        let expected = "\(nobody.uid) \(nobody.gid) " + nobody.groups.map(String.init).joined(separator: " ") + "\n"
        #expect(String(decoding: output, as: UTF8.self) == expected)
        #expect(TaskUser.lookUp("paddock-no-such-user") == nil)
    }

    @Test func runsArgvWithItsEnvironmentAndCwdAndMergesOutput() async throws {
        let child = try ChildProcess.launch(
            argv: ["sh", "-c", "echo out; echo err >&2; echo $GREETING; pwd; exit 3"],
            environment: ["GREETING": "hi", "PATH": "/usr/bin:/bin"], cwd: "/tmp")
        var output = Data()
        for await chunk in child.output { output.append(chunk) }
        #expect(await child.waitForExit() == .exited(3))
        #expect(String(decoding: output, as: UTF8.self) == "out\nerr\nhi\n/tmp\n")
    }

    @Test func missingExecutableIsALaunchError() {
        #expect(throws: LaunchError.self) {
            try ChildProcess.launch(argv: ["/nonexistent/program"], environment: [:], cwd: "/tmp")
        }
        #expect(throws: LaunchError.self) {
            try ChildProcess.launch(argv: ["true"], environment: [:], cwd: "/nonexistent-dir")
        }
    }

    @Test func terminateReachesGrandchildren() async throws {
        let child = try ChildProcess.launch(argv: ["sh", "-c", "sleep 300 & sleep 300"],
                                            environment: ["PATH": "/usr/bin:/bin"], cwd: "/tmp")
        // The shell forks its two sleeps in its own time (a busy machine may take a while).
        #expect(try await ContainmentTests.eventually { ProcessLedger.processes(inGroup: child.pid).count >= 2 })
        await child.terminate(grace: .seconds(2))
        for await _ in child.output {}  // closes only when every holder of the pipe is gone
        #expect(ProcessLedger.processes(inGroup: child.pid).filter { !ProcessTable.isZombie($0) }.isEmpty)
    }
}
