import Foundation
import PaddockClient
import PaddockProtocol
import Testing

/// Configuration files, `PADDOCK_*` variables and flags (issue: installing on hosts).
extension EndToEnd { @Suite struct ConfigTests {
    /// Starts a master with `arguments` and `environment`; returns the lease timeout it tells an enrolling agent.
    func leaseTimeout(_ farm: Farm, _ arguments: [String], environment: [String: String]) async throws -> Double {
        let port = try freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Farm.binary)
        process.arguments = ["master", "--listen", "127.0.0.1:\(port)", "--data", farm.dir + "/m\(port)"] + arguments
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PADDOCK_") }
            .merging(environment) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        let joiner = MasterClient(baseURL: URL(string: "http://127.0.0.1:\(port)")!, token: "file-join")
        var reply: EnrollResponse?
        try await eventually("the master answers", timeout: 20) {
            reply = try? await joiner.call("POST", APIPath.agents, json: EnrollRequest(
                name: "probe", resources: ResourceVector(cpus: 1), tags: [], version: "t"))
            return reply != nil
        }
        return try #require(reply).leaseTimeout
    }

    @Test func flagBeatsEnvironmentBeatsFile() async throws {
        let farm = try Farm()
        let tokens = farm.dir + "/join-token"
        try "file-join\n".write(toFile: tokens, atomically: true, encoding: .utf8)
        let file = farm.dir + "/master.yaml"
        try """
            # a master's settings
            join-token-file: \(tokens)
            admin-token: file-admin
            lease-timeout: 7s
            """.write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try await leaseTimeout(farm, ["--config", file], environment: [:]) == 7)
        #expect(try await leaseTimeout(farm, ["--config", file], environment: ["PADDOCK_LEASE_TIMEOUT": "5s"]) == 5)
        #expect(try await leaseTimeout(farm, ["--config", file, "--lease-timeout", "3s"],
                                       environment: ["PADDOCK_LEASE_TIMEOUT": "5s"]) == 3)
    }

    @Test func configCheckReportsUnknownKeysAndBadValuesWithTheirLines() throws {
        let farm = try Farm()
        let file = farm.dir + "/agent.yaml"
        try """
            master: http://127.0.0.1:8420
            work-dir: /var/lib/paddock/agent
            ram: 8 parsecs
            tags: [gpu, blender]
            colour: blue
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let (status, output) = try run(["config", "check", file])
        #expect(status != 0)
        #expect(output.contains("agent.yaml:3:") && output.contains("'ram' is not a size"), "\(output)")
        #expect(output.contains("agent.yaml:5:") && output.contains("unknown key 'colour'"), "\(output)")

        try "master: http://127.0.0.1:8420\nram: 8GiB\ntags: [gpu]\n".write(toFile: file, atomically: true, encoding: .utf8)
        let (good, said) = try run(["config", "check", file])
        #expect(good == 0 && said.contains("valid agent config"), "\(said)")
        // A role started with a bad file stops with the same report.
        try "master: nope\n".write(toFile: file, atomically: true, encoding: .utf8)
        let (refused, why) = try run(["agent", "--config", file])
        #expect(refused != 0 && why.contains("line 1"), "\(why)")
    }

    @Test func configCheckKnowsTheStore() throws {
        let farm = try Farm()
        let file = farm.dir + "/master.yaml"
        try "store: mysql://db/paddock\n".write(toFile: file, atomically: true, encoding: .utf8)
        let (status, output) = try run(["config", "check", file])
        #expect(status != 0 && output.contains("master.yaml:1:") && output.contains("'store'"), "\(output)")
        try "store: postgres://paddock@db:5432/paddock\nstore-password-file: /etc/paddock/db-password\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let (good, said) = try run(["config", "check", file])
        #expect(good == 0 && said.contains("valid master config"), "\(said)")
    }

    @Test func configCheckKnowsTheLimits() throws {
        let farm = try Farm()
        let file = farm.dir + "/master.yaml"
        try "rate-limit: 50/200\nagent-rate-limit: off\nidle-timeout: 10s\n".write(toFile: file, atomically: true, encoding: .utf8)
        let (good, said) = try run(["config", "check", file])
        #expect(good == 0 && said.contains("valid master config"), "\(said)")
        try "rate-limit: fast\n".write(toFile: file, atomically: true, encoding: .utf8)
        let (status, output) = try run(["config", "check", file])
        #expect(status != 0 && output.contains("master.yaml:1:") && output.contains("'rate-limit' is RATE/BURST"), "\(output)")
    }

    @Test func aClientWithNoMasterGivenSaysHowToGiveOne() throws {
        // Only meaningful where nothing listens on the default port (no `paddock dev` running here).
        guard (try? run(["jobs", "--master", "http://127.0.0.1:8420"]).1.contains("connection refused")) == true else { return }
        let (status, output) = try run(["jobs"])
        #expect(status == 1)
        #expect(output.contains("pass --master URL or set PADDOCK_MASTER"), "\(output)")
        #expect(!output.contains("USAGE"), "no usage banner for an unreachable master")
        let (_, explicit) = try run(["jobs", "--master", "http://127.0.0.1:8420"])
        #expect(!explicit.contains("pass --master URL"), "a master given on the command line needs no hint")
    }

    @Test func drainOnStopLetsTheRunningTaskFinish() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("careful", ["--cpus", "1", "--ram", "1GiB", "--on-stop", "drain"])
        let job = try await farm.submit(JobSubmission(name: "drained", tasks: [shell("sleep 1.5; echo finished")]))
        let taskID = try #require(job.taskIDs?.first)
        // Its process runs on the agent (the master records it running from the claim's commit, before
        // the lease has reached the agent: a lease still on its way when SIGTERM comes goes back).
        try await eventually("it runs", timeout: 20) { !processes(of: taskID, in: farm).isEmpty }
        try await farm.terminate("careful")  // SIGTERM, waits for the agent to exit
        let task = try await farm.task(taskID)
        #expect(task.state == .succeeded)
        #expect(try await farm.logs(taskID) == "finished\n")
        #expect(try await farm.agent(named: "careful")?.state == .offline)
    }
} }

/// Runs `paddock ARGS`; returns its exit status and its standard output and error together.
func run(_ arguments: [String]) throws -> (Int32, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: Farm.binary)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
