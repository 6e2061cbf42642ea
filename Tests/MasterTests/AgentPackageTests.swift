import Foundation
import Hummingbird
import HummingbirdTesting
import PaddockMaster
import PaddockProtocol
import Testing

/// The agent install script and package the master serves to new hosts.
@Suite struct AgentPackageTests {
    @Test func scriptCarriesTheMastersURLAndThePackagesChecksumAndOnlyThatPackageIsServed() async throws {
        let dir = NSTemporaryDirectory() + "paddock-package-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let deb = dir + "/paddock_0.1.0_amd64.deb"
        try Data("not really a deb".utf8).write(to: URL(fileURLWithPath: deb))
        let sum = String(repeating: "ab", count: 32)
        try "\(sum)  paddock_0.1.0_amd64.deb\n".write(toFile: deb + ".sha256", atomically: true, encoding: .utf8)

        var config = MasterConfig(joinToken: TestMaster.join, adminToken: TestMaster.admin)
        config.publicURL = "http://farm.example:8420"
        config.agentPackage = try AgentPackage.load(deb)
        let master = Master(config: config, store: try SQLStore.sqlite(path: dir + "/p.sqlite"))
        try await Application(router: master.router()).test(.router) { client in
            try await client.execute(uri: "/install-agent.sh", method: .get) { response in
                #expect(response.status == .ok)
                let script = String(buffer: response.body)
                #expect(script.contains("http://farm.example:8420") && script.contains(sum)
                        && script.contains("paddock_0.1.0_amd64.deb"))
                #expect(!script.contains("@MASTER_URL@") && !script.contains("@PACKAGE_SHA256@"))
            }
            try await client.execute(uri: "/packages/paddock_0.1.0_amd64.deb", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "not really a deb")
            }
            for other in ["/packages/other.deb", "/packages/..%2Fp.sqlite", "/packages/paddock_0.1.0_amd64.deb.sha256"] {
                try await client.execute(uri: other, method: .get) { response in
                    #expect(response.status == .notFound, "\(other)")
                }
            }
        }
        #expect(throws: PaddockError.self) { try AgentPackage.load(dir + "/missing.deb") }
    }
}
