import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address as its bytes (4 or 16). IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`,
/// what a dual-stack socket reports for an IPv4 peer) are taken as the IPv4 address they carry.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(_ text: some StringProtocol) {
        var text = String(text)
        // `[v6]` as written in URLs and some forwarding headers.
        if text.hasPrefix("["), text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        guard !text.isEmpty, text.utf8.count <= 64, !text.contains("%") else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self.init(bytes: withUnsafeBytes(of: &v4) { Array($0) })
            return
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        self.init(bytes: withUnsafeBytes(of: &v6) { Array($0) })
    }

    /// An address's 4 or 16 bytes, in network order.
    public init?(bytes: [UInt8]) {
        switch bytes.count {
        case 4: self.bytes = bytes
        case 16:
            let mapped = bytes.prefix(10).allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff
            self.bytes = mapped ? Array(bytes.suffix(4)) : bytes
        default: return nil
        }
    }

    public var isIPv4: Bool { bytes.count == 4 }

    public var description: String {
        if isIPv4 { return bytes.map(String.init).joined(separator: ".") }
        var storage = in6_addr()
        withUnsafeMutableBytes(of: &storage) { $0.copyBytes(from: bytes) }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &storage, &buffer, socklen_t(buffer.count)) != nil else { return "?" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// An address range in CIDR notation (`10.0.0.0/8`, `fd00::/8`); a bare address is a range of one.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    public let base: IPAddress
    public let prefix: Int

    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else { return nil }
        // `::ffff:10.0.0.0/104` names the same IPv4 range as `10.0.0.0/8`: its prefix counts 128 bits.
        let mapped = address.isIPv4 && parts[0].contains(":")
        let written = mapped ? 128 : address.bytes.count * 8
        var prefix = address.bytes.count * 8
        if parts.count == 2 {
            guard parts[1].count <= 3, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(parts[1]),
                  (0...written).contains(value) else { return nil }
            if mapped {
                guard value >= 96 else { return nil }
                prefix = value - 96
            } else {
                prefix = value
            }
        }
        self.base = address
        self.prefix = prefix
    }

    public func contains(_ address: IPAddress) -> Bool {
        guard address.bytes.count == base.bytes.count else { return false }
        var left = prefix
        for (a, b) in zip(address.bytes, base.bytes) where left > 0 {
            let mask: UInt8 = left >= 8 ? 0xff : ~(0xff >> UInt8(left))
            if a & mask != b & mask { return false }
            left -= 8
        }
        return true
    }

    public var description: String { "\(base)/\(prefix)" }
}

/// The frontends (HAProxy, nginx) whose `X-Forwarded-For` the master believes, and the rule that
/// decides a request's client address from it.
public struct TrustedProxies: Sendable, Equatable {
    public let networks: [IPNetwork]

    public static let none = TrustedProxies(networks: [])

    public init(networks: [IPNetwork]) { self.networks = networks }

    /// Addresses or CIDR ranges, e.g. `["10.0.0.5", "fd00::/8"]`.
    public init(_ specs: [String]) throws(BadNetwork) {
        var networks: [IPNetwork] = []
        for spec in specs {
            let trimmed = spec.trimmingCharacters(in: .whitespaces)
            guard let network = IPNetwork(trimmed) else { throw BadNetwork(text: String(trimmed.prefix(80))) }
            networks.append(network)
        }
        self.networks = networks
    }

    public struct BadNetwork: Error, CustomStringConvertible {
        public let text: String
        public var description: String { "'\(text)' is not an IP address or a CIDR range such as 10.0.0.0/8 or fd00::/8" }
    }

    public func trusts(_ address: IPAddress) -> Bool { networks.contains { $0.contains(address) } }

    /// At most this many `X-Forwarded-For` entries are looked at, from the right.
    static let maxHops = 32

    /// The client address of a request: the TCP peer, unless the peer is a trusted proxy; then the
    /// `X-Forwarded-For` chain (every header line, in order) is walked from the right, skipping
    /// trusted proxies, and the first untrusted address is the client. An untrusted peer's header
    /// is never believed (anyone can write one). An entry that is not an address stops the walk:
    /// nothing left of it can be trusted, so the client is the last address that could be.
    /// Nil when there is no peer address (a unix socket, an in-process test).
    public func client(peer: IPAddress?, forwardedFor: [String]) -> IPAddress? {
        guard let peer else { return nil }
        guard trusts(peer) else { return peer }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.suffix(Self.maxHops)
        var client = peer
        for entry in hops.reversed() {
            guard let address = Self.address(in: entry) else { return client }
            client = address
            if !trusts(address) { return address }
        }
        return client  // every hop was a proxy we trust: the leftmost is as far as we can see
    }

    /// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`, `[::1]:5678`).
    static func address(in entry: Substring) -> IPAddress? {
        let text = entry.trimmingCharacters(in: .whitespaces)
        if let address = IPAddress(text) { return address }
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            return IPAddress(text[text.index(after: text.startIndex)..<close])
        }
        let parts = text.split(separator: ":")
        if parts.count == 2, parts[1].allSatisfy(\.isNumber) { return IPAddress(parts[0]) }
        return nil
    }
}
