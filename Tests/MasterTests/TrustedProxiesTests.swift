import Foundation
import PaddockMaster
import Testing

/// The client-address rule, on plain values: a trusted frontend's `X-Forwarded-For` is walked from
/// the right past trusted hops; nobody else's is believed.
@Suite struct TrustedProxiesTests {
    /// Test constants, all valid (a typo here crashes the test, loudly).
    func ip(_ text: String) -> IPAddress { IPAddress(text)! }
    func net(_ text: String) -> IPNetwork { IPNetwork(text)! }
    let frontends = try! TrustedProxies(["10.0.0.0/8", "fd00::/8", "192.168.1.5"])

    @Test func addressesParseAndPrint() throws {
        #expect(ip("10.1.2.3").bytes == [10, 1, 2, 3])
        #expect(ip("2001:db8::1").description == "2001:db8::1")
        #expect(ip("[2001:db8::1]").bytes.count == 16)
        #expect(ip("::ffff:10.1.2.3") == ip("10.1.2.3"), "an IPv4-mapped peer is its IPv4 address")
        for bad in ["", "10.1.2", "10.1.2.256", "1.2.3.4.5", "example.com", "fe80::1%eth0", "10.0.0.1/8", " 10.0.0.1",
                    "::g", String(repeating: "1", count: 100)] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
    }

    @Test func cidrRangesOfBothFamilies() throws {
        let v4 = net("10.0.0.0/8")
        #expect(v4.contains(ip("10.255.3.4")) && !v4.contains(ip("11.0.0.1")))
        #expect(!v4.contains(ip("::a00:1")), "an IPv6 address is never in an IPv4 range")
        let narrow = net("192.168.4.0/22")
        #expect(narrow.contains(ip("192.168.7.255")) && !narrow.contains(ip("192.168.8.0")))
        let v6 = net("fd00::/8")
        #expect(v6.contains(ip("fd12:3456::1")) && !v6.contains(ip("fe80::1")))
        let odd = net("2001:db8::/33")
        #expect(odd.contains(ip("2001:db8:7fff::1")) && !odd.contains(ip("2001:db8:8000::1")))
        #expect(net("10.1.2.3").contains(ip("10.1.2.3")))
        #expect(!net("10.1.2.3").contains(ip("10.1.2.4")), "a bare address is a range of one")
        #expect(net("0.0.0.0/0").contains(ip("8.8.8.8")))
        #expect(net("::ffff:10.0.0.0/104").contains(ip("10.9.9.9")))
        for bad in ["10.0.0.0/33", "fd00::/129", "10.0.0.0/-1", "10.0.0.0/", "10.0.0.0/8/8", "10.0.0.0/+8", "net/8", "/8"] {
            #expect(IPNetwork(bad) == nil, "\(bad)")
        }
        #expect(throws: TrustedProxies.BadNetwork.self) { try TrustedProxies(["10.0.0.0/8", "frontend.local"]) }
    }

    @Test func anUntrustedPeersForwardedForIsIgnored() throws {
        let client = frontends.client(peer: ip("203.0.113.9"), forwardedFor: ["10.0.0.1", "1.2.3.4"])
        #expect(client == ip("203.0.113.9"), "anyone can write X-Forwarded-For")
        #expect(TrustedProxies.none.client(peer: ip("10.0.0.1"), forwardedFor: ["1.2.3.4"]) == ip("10.0.0.1"))
        #expect(frontends.client(peer: nil, forwardedFor: ["1.2.3.4"]) == nil)
    }

    @Test func aTrustedChainIsWalkedFromTheRight() throws {
        let peer = ip("10.0.0.2")
        // client, then a second frontend: the first untrusted address from the right is the client.
        #expect(frontends.client(peer: peer, forwardedFor: ["198.51.100.7, 10.0.0.3"]) == ip("198.51.100.7"))
        // A client that forged its own header only gets its forged entries to the left of its real address.
        #expect(frontends.client(peer: peer, forwardedFor: ["6.6.6.6, 198.51.100.7"]) == ip("198.51.100.7"))
        // Several header lines make one chain, in order; ports and brackets are tolerated.
        #expect(frontends.client(peer: peer, forwardedFor: ["6.6.6.6", "198.51.100.7:4711", "10.0.0.3"])
                == ip("198.51.100.7"))
        #expect(frontends.client(peer: ip("fd00::2"), forwardedFor: ["[2001:db8::5]:443, 192.168.1.5"])
                == ip("2001:db8::5"))
        // A trusted peer that forwarded nothing is itself the client; all-trusted chains end at the leftmost.
        #expect(frontends.client(peer: peer, forwardedFor: []) == peer)
        #expect(frontends.client(peer: peer, forwardedFor: ["10.0.0.9, 10.0.0.3"]) == ip("10.0.0.9"))
    }

    @Test func aMalformedEntryStopsTheWalk() throws {
        let peer = ip("10.0.0.2")
        #expect(frontends.client(peer: peer, forwardedFor: ["garbage"]) == peer)
        #expect(frontends.client(peer: peer, forwardedFor: ["198.51.100.7, unknown"]) == peer,
                "nothing left of a bad entry can be trusted")
        #expect(frontends.client(peer: peer, forwardedFor: ["1.2.3.4, _hidden, 10.0.0.3"]) == ip("10.0.0.3"))
        #expect(frontends.client(peer: peer, forwardedFor: ["198.51.100.7, "]) == peer, "an empty entry is malformed")
        #expect(frontends.client(peer: peer, forwardedFor: ["198.51.100.7'; DROP"]) == peer)
    }
}
