import Foundation
import PaddockClient
import PaddockProtocol
import PaddockTestSupport
import Testing

/// Named tokens, roles and enrollment that cannot be hijacked (issue 16), with a real master, real
/// agents and the `paddock` CLI on loopback.
extension EndToEnd { @Suite struct TokenEndToEndTests {
    @Test func enrollingUnderALiveAgentsNameWithoutItsCredentialIsRefusedAndTheAgentRunsOn() async throws {
        let farm = try Farm(leaseTimeout: "10s")
        try await farm.startMaster()
        try farm.startAgent("render-01", ["--cpus", "1", "--ram", "1GiB"])
        let job = try await farm.submit(JobSubmission(name: "long", tasks: [shell("sleep 6; echo done", name: "long")]))
        let taskID = try #require(job.taskIDs?.first)
        try await eventually("the task runs", timeout: 30) { try await farm.task(taskID).state == .running }
        let running = try await farm.task(taskID)
        let live = try #require(try await farm.agent(named: "render-01"))

        // Another host, with the join token but not the agent's credential, under the same name.
        try farm.launch("impostor", ["agent", "--master", farm.url, "--join-token", Farm.join, "--name", "render-01",
                                     "--work-dir", farm.dir + "/impostor", "--cpus", "1", "--ram", "1GiB"])
        _ = try await farm.waitForLine(in: farm.dir + "/impostor.log", containing: "paddock agent reset render-01")
        let during = try await farm.task(taskID)
        #expect(during.state == .running && during.agent == live.id && during.epoch == running.epoch)

        let tasks = try await farm.waitForJob(job.id, timeout: 60)
        #expect(tasks.map(\.state) == [.succeeded], "\(farm.log("render-01"))")
        #expect(tasks.first?.agent == live.id && tasks.first?.runs == 1)
        #expect(try await farm.logs(taskID) == "done\n")
        #expect(try await farm.agents().map(\.name) == ["render-01"])

        // An admin's reset lets the new host in: it was asking again all along.
        let said = try await cli(farm, ["agent", "reset", "render-01"])
        #expect(said.contains("its credential no longer works"))
        _ = try await farm.waitForLine(in: farm.dir + "/impostor.log", containing: "enrolled as \(live.id)")
    }

    @Test func joinTokensMadeWithTheCLIAreUsedUpAndExpire() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        let made = try await cli(farm, ["token", "create", "--name", "rack-4", "--role", "join", "--uses", "1"])
        let secret = try #require(made.split(separator: "\n").first.map(String.init))
        #expect(secret.hasPrefix("pt_") && made.contains("role join") && made.contains("1 use"))

        try farm.launch("first", ["agent", "--master", farm.url, "--join-token", secret, "--name", "first",
                                  "--work-dir", farm.dir + "/first", "--cpus", "1", "--ram", "1GiB"])
        try await eventually("the first agent enrolls", timeout: 30) { try await farm.agent(named: "first") != nil }
        try farm.launch("second", ["agent", "--master", farm.url, "--join-token", secret, "--name", "second",
                                   "--work-dir", farm.dir + "/second", "--cpus", "1", "--ram", "1GiB"])
        _ = try await farm.waitForLine(in: farm.dir + "/second.log", containing: "has been used 1 times")
        #expect(try await farm.agent(named: "second") == nil)
        // The enrolled agent needs its join token no more: it runs work with the token used up.
        let job = try await farm.submit(JobSubmission(name: "after", tasks: [shell("echo ran")]))
        let ran = try await farm.waitForJob(job.id, timeout: 60)
        let first = try await farm.agent(named: "first")
        #expect(ran.map(\.state) == [.succeeded] && ran.first?.agent == first?.id)

        let brief = try await cli(farm, ["token", "create", "--name", "brief", "--role", "join", "--ttl", "1s"])
        let briefSecret = try #require(brief.split(separator: "\n").first.map(String.init))
        try await eventually("the brief token is listed expired", timeout: 30) {
            try await cli(farm, ["token", "list"]).contains("expired")
        }
        try farm.launch("third", ["agent", "--master", farm.url, "--join-token", briefSecret, "--name", "third",
                                  "--work-dir", farm.dir + "/third", "--cpus", "1", "--ram", "1GiB"])
        _ = try await farm.waitForLine(in: farm.dir + "/third.log", containing: "expired at")
        let listed = try await cli(farm, ["token", "list"])
        #expect(listed.contains("used_up") && !listed.contains(secret) && !listed.contains(briefSecret))
    }

    @Test func readAndSubmitTokensThroughTheCLI() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("worker", ["--cpus", "1", "--ram", "1GiB"])
        let reader = try #require(try await cli(farm, ["token", "create", "--name", "viewer", "--role", "read"])
            .split(separator: "\n").first.map(String.init))
        let alice = try #require(try await cli(farm, ["token", "create", "--name", "alice", "--role", "submit", "--ttl", "30d"])
            .split(separator: "\n").first.map(String.init))
        let theirs = try await farm.submit(JobSubmission(name: "bobs", owner: "bob", tasks: [shell("sleep 300")]))
        try await eventually("bob's task runs", timeout: 30) { try await farm.job(theirs.id).state == .running }
        let spec = farm.dir + "/job.yaml"
        try "name: alices\nowner: mallory\ntasks:\n  - name: a\n    command: [\"sleep\", \"300\"]\n"
            .write(toFile: spec, atomically: true, encoding: .utf8)

        let readCancel = try await cliAs(farm, reader, ["cancel", theirs.id.description])
        #expect(readCancel.status != 0 && readCancel.error.contains("this call needs the submit role; this token has role read"))
        #expect(try await cliAs(farm, reader, ["jobs"]).output.contains("bobs"))
        #expect(try await cliAs(farm, reader, ["whoami"]).output.contains("viewer (role read"))

        let submitted = try await cliAs(farm, alice, ["submit", spec])
        #expect(submitted.status == 0, "\(submitted.error)")
        let jobs: Page<JobView> = try await farm.admin.call("GET", APIPath.jobs)
        let mine = try #require(jobs.items.first { $0.name == "alices" })
        #expect(mine.owner == "alice")
        let refused = try await cliAs(farm, alice, ["cancel", theirs.id.description])
        #expect(refused.status != 0 && refused.error.contains("owned by bob"))
        let agent = try #require(try await farm.agent(named: "worker"))
        let drain = try await cliAs(farm, alice, ["drain", agent.id.description])
        #expect(drain.status != 0 && drain.error.contains("this call needs the admin role; this token has role submit"))
        let workerNow = try await farm.agent(named: "worker")
        #expect(try await farm.job(theirs.id).state == .running && workerNow?.state == .online)
        #expect(try await cliAs(farm, alice, ["cancel", mine.id.description]).status == 0)

        let list = try await cli(farm, ["token", "list"])
        let aliceID = try #require(list.split(separator: "\n").first { $0.contains("alice") }?.split(separator: " ").first)
        #expect(try await cli(farm, ["token", "revoke", String(aliceID)]).contains("revoked"))
        let after = try await cliAs(farm, alice, ["jobs"])
        #expect(after.status != 0 && after.error.contains("was revoked"))
        _ = try await cli(farm, ["cancel", theirs.id.description])
    }
} }

/// Runs the CLI against the farm with `token`; returns its exit status, standard output and error.
func cliAs(_ farm: Farm, _ token: String, _ arguments: [String]) async throws -> (status: Int32, output: String, error: String) {
    let url = farm.url
    return try await offThePool { () throws -> (Int32, String, String) in
        var environment = ProcessInfo.processInfo.environment
        environment["PADDOCK_MASTER"] = url
        environment["PADDOCK_TOKEN"] = token
        let ran = try runCommand([Farm.binary] + arguments, environment: environment)
        return (ran.status, ran.output, ran.errors)
    }
}
