import Foundation
import PaddockClient
import PaddockMaster
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

    /// `systemctl reload` (SIGHUP) serves a renewed certificate to new connections without a restart;
    /// a pair that cannot be read is refused and the one in use kept.
    @Test func sighupServesARenewedCertificateToNewConnections() async throws {
        let farm = try Farm()
        let certificate = farm.dir + "/tls.pem", key = farm.dir + "/tls-key.pem"
        func install(_ certificateName: String, _ keyName: String) throws {
            for (name, path) in [(certificateName, certificate), (keyName, key)] {
                try? FileManager.default.removeItem(atPath: path)
                try FileManager.default.copyItem(atPath: Self.fixtures.appendingPathComponent(name).path, toPath: path)
            }
        }
        try install("server.pem", "server-key.pem")
        let firstCA = Self.fixtures.appendingPathComponent("ca.pem").path
        let renewedCA = Self.fixtures.appendingPathComponent("ca-rotated.pem").path
        farm.tls = (certificate: certificate, key: key, caFile: firstCA)
        try await farm.startMaster()
        let master = try #require(farm.pid("master"))
        let url = try #require(URL(string: farm.url))
        _ = try await MasterClient(baseURL: url, token: Farm.admin, caFile: firstCA).raw("GET", APIPath.jobs, timeout: 10)

        try "not a certificate".write(toFile: certificate, atomically: true, encoding: .utf8)
        kill(master, SIGHUP)
        _ = try await farm.waitForLine(in: farm.dir + "/master.log", containing: "the certificate read before stays in use")
        _ = try await MasterClient(baseURL: url, token: Farm.admin, caFile: firstCA).raw("GET", APIPath.jobs, timeout: 10)

        try install("server-rotated.pem", "server-rotated-key.pem")
        kill(master, SIGHUP)
        _ = try await farm.waitForLine(in: farm.dir + "/master.log", containing: "read again; new connections use it")
        // A pool of its own for each client below: a new connection and a new handshake (the pools
        // by CA file keep their connections, which keep the certificate they were opened with).
        func fresh(_ caFile: String) throws -> MasterClient {
            MasterClient(baseURL: url, token: Farm.admin, pool: try ConnectionPool(connectionsPerHost: 1, caFile: caFile))
        }
        _ = try await fresh(renewedCA).raw("GET", APIPath.jobs, timeout: 10)
        await #expect(throws: (any Error).self, "a client trusting only the old CA still accepted the master") {
            _ = try await fresh(firstCA).raw("GET", APIPath.jobs, timeout: 10)
        }
        #expect(kill(master, 0) == 0, "the master still runs")
    }

    /// `--tls-self-signed DIR`: a first install encrypted without a PKI. The master makes a CA and
    /// its certificate, prints the CA's fingerprint, and keeps both across restarts; an agent and the
    /// CLI that trust DIR/ca.pem run a job through it.
    @Test func aSelfSignedMasterIsTrustedThroughItsOwnCA() async throws {
        let farm = try Farm()
        let directory = farm.dir + "/tls"
        farm.tls = (certificate: "", key: "", caFile: directory + "/ca.pem")
        try await farm.startMaster(["--tls-self-signed", directory])
        let printed = try await farm.waitForLine(in: farm.dir + "/master.log", containing: "SHA-256 fingerprint")
        let fingerprint = try SelfSignedTLS.fingerprint(pemFile: directory + "/ca.pem")
        #expect(printed.contains(fingerprint) && printed.contains("made now: CA, server certificate"), "\(printed)")
        for key in ["ca-key.pem", "key.pem"] {
            let mode = try #require(try FileManager.default.attributesOfItem(atPath: directory + "/" + key)[.posixPermissions] as? Int)
            #expect(mode == 0o600, "\(key) is readable by others: \(String(mode, radix: 8))")
        }
        try farm.startAgent("trusting", ["--cpus", "1", "--ca-file", directory + "/ca.pem"])
        let job = try await farm.submit(JobSubmission(name: "self-signed", tasks: [shell("echo private")]))
        #expect(try await farm.waitForJob(job.id, timeout: 60).map(\.state) == [.succeeded])
        #expect(try await cli(farm, ["jobs"]).contains("self-signed"))

        // Restarted on the same directory: the same CA and certificate, nothing made again.
        try await farm.terminate("trusting")
        try await farm.terminate("master")
        let certificate = try String(contentsOfFile: directory + "/cert.pem", encoding: .utf8)
        try await farm.startMaster(["--tls-self-signed", directory])
        #expect(try String(contentsOfFile: directory + "/cert.pem", encoding: .utf8) == certificate)
        #expect(try SelfSignedTLS.fingerprint(pemFile: directory + "/ca.pem") == fingerprint)
        #expect(farm.log("master").components(separatedBy: "made now").count == 2, "made again on restart")
        #expect(try await cli(farm, ["jobs"]).contains("self-signed"))
    }
} }
