import Foundation
@testable import PaddockMaster
import NIOSSL
import Testing
import X509

/// `--tls-self-signed`: what is made, what is kept, and when the server certificate is made again.
@Suite struct SelfSignedTLSTests {
    static func directory() -> String {
        NSTemporaryDirectory() + "paddock-selfsigned-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    @Test func aCAAndACertificateItSignedAreMadeOnceAndKept() throws {
        let directory = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try SelfSignedTLS.prepare(directory: directory, names: ["farm.example", "10.1.2.3"])
        #expect(first.made == ["CA", "server certificate"])
        let ca = try Certificate(pemEncoded: try String(contentsOfFile: first.caFile, encoding: .utf8))
        let server = try Certificate(pemEncoded: try String(contentsOfFile: first.files.certificateChain, encoding: .utf8))
        #expect(server.issuer == ca.subject)
        #expect(try ca.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 0))
        #expect(try server.extensions.basicConstraints == .notCertificateAuthority)
        let names = try #require(try server.extensions.subjectAlternativeNames)
        for name in ["farm.example", "localhost"] { #expect(names.contains(.dnsName(name)), "\(name)") }
        #expect(names.contains(SelfSignedTLS.generalName("10.1.2.3")) && names.contains(SelfSignedTLS.generalName("127.0.0.1")))
        // NIOSSL (what serves it) reads both.
        _ = try NIOSSLCertificate.fromPEMFile(first.files.certificateChain)
        _ = try NIOSSLPrivateKey(file: first.files.privateKey, format: .pem)
        #expect(first.caFingerprint.count == 32 * 3 - 1)

        let again = try SelfSignedTLS.prepare(directory: directory, names: ["farm.example", "10.1.2.3"])
        #expect(again.made.isEmpty)
        #expect(again.caFingerprint == first.caFingerprint)
    }

    @Test func theServerCertificateIsMadeAgainForANewNameOrNearItsEndWithTheSameCA() throws {
        let directory = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try SelfSignedTLS.prepare(directory: directory)
        let renamed = try SelfSignedTLS.prepare(directory: directory, names: ["render-master.example"])
        #expect(renamed.made == ["server certificate"])
        #expect(renamed.caFingerprint == first.caFingerprint)
        let later = Date().addingTimeInterval(SelfSignedTLS.serverValidity - SelfSignedTLS.renewBefore + 86400)
        let renewed = try SelfSignedTLS.prepare(directory: directory, names: ["render-master.example"], now: later)
        #expect(renewed.made == ["server certificate"])
        let server = try Certificate(pemEncoded: try String(contentsOfFile: renewed.files.certificateChain, encoding: .utf8))
        #expect(server.notValidAfter > later.addingTimeInterval(SelfSignedTLS.serverValidity - 86400))
        #expect(renewed.caFingerprint == first.caFingerprint)
    }

    @Test func anUnwritableDirectoryIsAClearError() {
        #expect(throws: SelfSignedTLS.Failure.self) { try SelfSignedTLS.prepare(directory: "/proc/paddock-cannot-be-here") }
    }
}
