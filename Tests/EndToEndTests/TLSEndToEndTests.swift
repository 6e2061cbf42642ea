import Foundation
import PaddockClient
import PaddockProtocol
import Testing

/// An HTTPS master (issue: security, TLS): agents and the CLI that trust its CA work through it,
/// an agent that does not is refused by its own TLS check and never enrolls.
extension EndToEnd { @Suite struct TLSEndToEndTests {
    /// The test CA and the 127.0.0.1/localhost certificate it signed (valid until 2126), shared with the client's tests.
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("ClientTests/Fixtures")

    static func httpsFarm() throws -> Farm {
        let farm = try Farm()
        farm.tls = (certificate: fixtures.appendingPathComponent("server.pem").path,
                    key: fixtures.appendingPathComponent("server-key.pem").path,
                    caFile: fixtures.appendingPathComponent("ca.pem").path)
        return farm
    }

    @Test func anAgentAndTheCLIThatTrustTheCARunAJobOverHTTPS() async throws {
        let farm = try Self.httpsFarm()
        try await farm.startMaster()
        #expect(farm.url.hasPrefix("https://"))
        let caFile = try #require(farm.tls?.caFile)
        try farm.startAgent("secure", ["--cpus", "1", "--ca-file", caFile])
        let job = try await farm.submit(JobSubmission(name: "over-tls", tasks: [shell("echo encrypted")]))
        let tasks = try await farm.waitForJob(job.id, timeout: 60)
        #expect(tasks.map(\.state) == [.succeeded])
        #expect(try await farm.logs(tasks[0].id) == "encrypted\n")
        #expect(try await cli(farm, ["jobs"]).contains("over-tls"))
        // Plain HTTP to the HTTPS port gets no answer a client could take for the API's.
        let plain = MasterClient(baseURL: try #require(URL(string: "http://127.0.0.1:\(farm.port)")), token: Farm.admin)
        await #expect(throws: (any Error).self) { _ = try await plain.raw("GET", APIPath.jobs, timeout: 10) }
    }

    @Test func anAgentWithoutTheCARefusesTheMasterAndNeverEnrolls() async throws {
        let farm = try Self.httpsFarm()
        try await farm.startMaster()
        try farm.startAgent("stranger", ["--cpus", "1"])  // trusts the system's CAs only
        let line = try await farm.waitForLine(in: farm.dir + "/stranger.log", containing: "enrolling:")
        #expect(line.lowercased().contains("certificate") || line.lowercased().contains("tls") || line.lowercased().contains("ssl"),
                "\(line)")
        // Its next attempts fail the same way: it is not in the farm.
        _ = try await farm.waitForLine(in: farm.dir + "/stranger.log", containing: "retrying")
        #expect(try await farm.agents().isEmpty)
        // A CA file that is not one stops the agent at once with that reason.
        let bogus = farm.dir + "/bogus.pem"
        try "not a certificate".write(toFile: bogus, atomically: true, encoding: .utf8)
        try farm.startAgent("confused", ["--cpus", "1", "--ca-file", bogus])
        _ = try await farm.waitForLine(in: farm.dir + "/confused.log", containing: "--ca-file")
    }
} }
