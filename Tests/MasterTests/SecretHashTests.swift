import Crypto
import Foundation
@testable import PaddockMaster
import Testing

/// The hashes secrets and idempotent submissions are kept under: SHA-256 in lowercase hex.
struct SecretHashTests {
    @Test func hashesAreSHA256InLowercaseHex() {
        // FIPS 180-2's own examples.
        #expect(SecretHash.hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SecretHash.hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func everyByteIsTwoDigits() {
        #expect(SecretHash.hex([0x00, 0x0f, 0x10, 0xa5, 0xf0, 0xff] as [UInt8]) == "000f10a5f0ff")
        #expect(SecretHash.hex([UInt8]()) == "")
        let all = SecretHash.hex((0...255).map(UInt8.init))
        #expect(all == (0...255).map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined())
        #expect(SecretHash.hex(SHA256.hash(data: Data("abc".utf8))) == SecretHash.hex("abc"))
    }
}
