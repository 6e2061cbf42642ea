import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
@testable import PaddockMaster
import PaddockProtocol
import Testing

/// The master names the client of a request by the trust rule, records where each agent calls
/// from, and builds no link from a Host header it has no reason to believe.
@Suite struct ClientAddressTests {
    /// Over real loopback TCP (the peer is 127.0.0.1): trusted, its X-Forwarded-For names the agent's host.
    @Test func agentsShowTheAddressATrustedFrontendForwarded() async throws {
        let master = try TestMaster(trustedProxies: try TrustedProxies(["127.0.0.0/8", "::1"]))
        try await master.test(.live) { client in
            let forwarded: HTTPFields = [HTTPFields.Element.Name("X-Forwarded-For")!: "6.6.6.6, 198.51.100.7"]
            let reply = try await client.send(.post, "/v1/agents", token: TestMaster.join, json: EnrollRequest(
                name: "render-01", resources: ResourceVector(cpus: 2, ram: 1 << 30), tags: [], version: "test"),
                headers: forwarded)
            #expect(reply.status == 201)
            let id = try reply.decode(EnrollResponse.self).id
            let agents = try await client.send(.get, "/v1/agents").decode(Page<AgentView>.self).items
            #expect(agents.map(\.address) == ["198.51.100.7"])
            #expect(try await client.send(.get, "/v1/agents/\(id)").decode(AgentView.self).address == "198.51.100.7")
        }
    }

    /// The same call from an untrusted peer: its header is ignored, the peer itself is the client.
    @Test func anUntrustedPeerCannotClaimAnotherAddress() async throws {
        try await TestMaster().test(.live) { client in
            let forwarded: HTTPFields = [HTTPFields.Element.Name("X-Forwarded-For")!: "198.51.100.7"]
            let reply = try await client.send(.post, "/v1/agents", token: TestMaster.join, json: EnrollRequest(
                name: "render-02", resources: ResourceVector(cpus: 2, ram: 1 << 30), tags: [], version: "test"),
                headers: forwarded)
            #expect(reply.status == 201)
            let address = try await client.send(.get, "/v1/agents").decode(Page<AgentView>.self).items.first?.address
            #expect(address.flatMap(IPAddress.init).map { IPNetwork("127.0.0.0/8")!.contains($0) || $0.description == "::1" }
                    == true, "\(address ?? "nil")")
        }
    }

    /// A socket's peer read from its bytes names what its written form names (an IPv4 peer of a
    /// dual-stack socket, `::ffff:a.b.c.d`, as its IPv4 address).
    @Test(arguments: [("127.0.0.1", "127.0.0.1"), ("198.51.100.7", "198.51.100.7"), ("::1", "::1"),
                      ("2001:db8::7", "2001:db8::7"), ("::ffff:10.0.0.1", "10.0.0.1")])
    func aPeersAddressFromItsBytes(_ written: String, _ named: String) throws {
        let address = try #require(IPAddress(socketAddress: try SocketAddress(ipAddress: written, port: 8420)))
        #expect(address == IPAddress(written))
        #expect(address.description == named)
    }

    @Test func aUnixSocketPeerHasNoAddress() throws {
        #expect(IPAddress(socketAddress: try SocketAddress(unixDomainSocketPath: "/tmp/paddock.sock")) == nil)
        #expect(IPAddress(bytes: [1, 2, 3]) == nil)
    }

    /// In-process there is no peer: no address is made up.
    @Test func noPeerNoAddress() async throws {
        try await TestMaster(trustedProxies: try TrustedProxies(["0.0.0.0/0"])).test { client in
            _ = try await client.enroll("render-03")
            #expect(try await client.send(.get, "/v1/agents").decode(Page<AgentView>.self).items.first?.address == nil)
        }
    }

    @Test func theInstallScriptsURLIsNeverAnUncheckedHostHeader() {
        let fallback = "10.0.0.1:8420"
        #expect(MasterAPI.installURL(publicURL: "https://farm.example", authority: "evil.example", fallback: fallback)
                == "https://farm.example", "--public-url wins over any Host")
        #expect(MasterAPI.installURL(publicURL: nil, authority: "master-1:8420", fallback: fallback) == "http://master-1:8420")
        #expect(MasterAPI.installURL(publicURL: nil, authority: "[fd00::1]:8420", fallback: fallback) == "http://[fd00::1]:8420")
        for hostile in ["x'; reboot; '", "a b", "evil.example/$(id)", "user@evil", "", String(repeating: "a", count: 300)] {
            #expect(MasterAPI.installURL(publicURL: nil, authority: hostile, fallback: fallback) == "http://10.0.0.1:8420",
                    "\(hostile)")
        }
        #expect(MasterAPI.installURL(publicURL: nil, authority: nil, fallback: fallback) == "http://10.0.0.1:8420")
    }
}
