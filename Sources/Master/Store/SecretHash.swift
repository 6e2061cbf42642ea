import Crypto
import Foundation

/// How secrets are kept: never in clear, only the SHA-256 of their UTF-8 bytes in lowercase hex
/// (tokens and agents' credentials are 256 random bits: a plain hash is enough, no salt or
/// stretching). The store looks rows up by this hash.
public enum SecretHash {
    public static func hex(_ secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).map { byte in
            let digits = String(byte, radix: 16)
            return byte < 16 ? "0" + digits : digits
        }.joined()
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
