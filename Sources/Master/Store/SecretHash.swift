import Crypto
import Foundation

/// How secrets are kept: never in clear, only the SHA-256 of their UTF-8 bytes in lowercase hex
/// (tokens and agents' credentials are 256 random bits: a plain hash is enough, no salt or
/// stretching). The store looks rows up by this hash.
public enum SecretHash {
    public static func hex(_ secret: String) -> String {
        hex(SHA256.hash(data: Data(secret.utf8)))
    }

    /// Bytes in lowercase hex, two digits each. Written into one buffer: a string per byte (or
    /// `String(format:)`) made hashing a token or a submission's body a few percent of the
    /// master's CPU per request.
    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Compares two hashes in time that does not depend on where they differ.
    static func equal(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for i in x.indices { difference |= x[i] ^ y[i] }
        return difference == 0
    }

    /// A new secret: `prefix` and 256 bits from the system's CSPRNG (getrandom on Linux), in hex.
    static func newSecret(prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        return prefix + (0..<4).map { _ in
            let hex = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }
}
