import Crypto
import Foundation
import SwiftASN1
import X509

/// `paddock master --tls-self-signed DIR`: a CA and a server certificate it signed, made on the first
/// start and kept in DIR, so a small farm is encrypted without a PKI. Agents and the CLI trust the CA
/// (`--ca-file DIR/ca.pem`, copied to them), checked against the fingerprint the master prints. The
/// server certificate names this host, localhost and the loopback addresses, and whatever else is
/// given; it is made again from the same CA when it nears its end or lacks a name now wanted.
public enum SelfSignedTLS {
    public struct Prepared: Sendable {
        public var files: TLSFiles
        public var caFile: String
        /// SHA-256 of the CA certificate's DER, as `AB:CD:...`.
        public var caFingerprint: String
        /// What was made on this start: nothing, the server certificate, or the CA and it.
        public var made: [String]
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    static let caValidity: TimeInterval = 10 * 365 * 86400
    static let serverValidity: TimeInterval = 397 * 86400
    /// A server certificate with less than this left is made again.
    static let renewBefore: TimeInterval = 30 * 86400

    /// Makes what is missing in `directory` (mode 0700; keys 0600) and returns the files to serve.
    /// `names` are host names and IP addresses the certificate must carry beside the defaults.
    public static func prepare(directory: String, names: [String] = [], now: Date = Date()) throws(Failure) -> Prepared {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw Failure(description: "--tls-self-signed: cannot make \(directory): \(error.localizedDescription)")
        }
        let caPath = directory + "/ca.pem", caKeyPath = directory + "/ca-key.pem"
        let certPath = directory + "/cert.pem", keyPath = directory + "/key.pem"
        var made: [String] = []
        do {
            let wanted = Self.names(extra: names)
            let (ca, caKey): (Certificate, P256.Signing.PrivateKey)
            if let existing = try Self.load(certificate: caPath, key: caKeyPath) {
                (ca, caKey) = existing
            } else {
                (ca, caKey) = try Self.makeCA(now: now)
                try write(caKey.pemRepresentation, to: caKeyPath, mode: 0o600)
                try write(try ca.serializeAsPEM().pemString + "\n", to: caPath, mode: 0o644)
                made.append("CA")
            }
            let current = try Self.load(certificate: certPath, key: keyPath)
            if made.contains("CA") || current.map({ !Self.serves(wanted, $0.0, issuer: ca, now: now) }) ?? true {
                let key = P256.Signing.PrivateKey()
                let certificate = try Self.makeServer(names: wanted, key: key, ca: ca, caKey: caKey, now: now)
                try write(key.pemRepresentation, to: keyPath, mode: 0o600)
                try write(try certificate.serializeAsPEM().pemString + "\n", to: certPath, mode: 0o644)
                made.append("server certificate")
            }
            return Prepared(files: TLSFiles(certificateChain: certPath, privateKey: keyPath), caFile: caPath,
                            caFingerprint: try fingerprint(ca), made: made)
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "--tls-self-signed \(directory): \(error)")
        }
    }

    /// This host's names, localhost and the loopback addresses, and `extra`.
    static func names(extra: [String]) -> [String] {
        let host = ProcessInfo.processInfo.hostName
        var names = [host, String(host.split(separator: ".").first ?? ""), "localhost", "127.0.0.1", "::1"] + extra
        names = names.filter { !$0.isEmpty && $0 != "0.0.0.0" && $0 != "::" }
        var seen: Set<String> = []
        return names.filter { seen.insert($0.lowercased()).inserted }
    }

    static func makeCA(now: Date) throws -> (Certificate, P256.Signing.PrivateKey) {
        let key = P256.Signing.PrivateKey()
        let host = ProcessInfo.processInfo.hostName
        let name = try DistinguishedName { CommonName("Paddock CA for \(host)") }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(caValidity),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(key))
        return (certificate, key)
    }

    static func makeServer(names: [String], key: P256.Signing.PrivateKey, ca: Certificate, caKey: P256.Signing.PrivateKey,
                           now: Date) throws -> Certificate {
        let subject = try DistinguishedName { CommonName(names.first ?? "localhost") }
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(serverValidity),
            issuer: ca.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names.map(generalName))
            },
            issuerPrivateKey: .init(caKey))
    }

    /// An IP address as its bytes, anything else as a DNS name.
    static func generalName(_ name: String) -> GeneralName {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, name, &v4) == 1 {
            return .ipAddress(ASN1OctetString(contentBytes: ArraySlice(withUnsafeBytes(of: &v4) { Array($0) })))
        }
        if inet_pton(AF_INET6, name, &v6) == 1 {
            return .ipAddress(ASN1OctetString(contentBytes: ArraySlice(withUnsafeBytes(of: &v6) { Array($0) })))
        }
        return .dnsName(name)
    }

    /// The server certificate is the CA's, good for longer than `renewBefore`, and names all of `names`.
    static func serves(_ names: [String], _ certificate: Certificate, issuer: Certificate, now: Date) -> Bool {
        guard certificate.issuer == issuer.subject, certificate.notValidAfter.timeIntervalSince(now) > renewBefore,
              let present = try? certificate.extensions.subjectAlternativeNames else { return false }
        return names.allSatisfy { present.contains(generalName($0)) }
    }

    static func load(certificate path: String, key keyPath: String) throws -> (Certificate, P256.Signing.PrivateKey)? {
        guard FileManager.default.fileExists(atPath: path), FileManager.default.fileExists(atPath: keyPath) else { return nil }
        let certificate = try Certificate(pemEncoded: try String(contentsOfFile: path, encoding: .utf8))
        let key = try P256.Signing.PrivateKey(pemRepresentation: try String(contentsOfFile: keyPath, encoding: .utf8))
        return (certificate, key)
    }

    static func write(_ text: String, to path: String, mode: Int) throws {
        let temporary = path + ".new"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: mode]) else {
            throw Failure(description: "cannot write \(temporary)")
        }
        guard rename(temporary, path) == 0 else { throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
    }

    /// The fingerprint of the (first) certificate in a PEM file.
    public static func fingerprint(pemFile path: String) throws -> String {
        try fingerprint(try Certificate(pemEncoded: try String(contentsOfFile: path, encoding: .utf8)))
    }

    /// SHA-256 of the certificate's DER, as `AB:CD:...` (what `openssl x509 -fingerprint -sha256` prints).
    public static func fingerprint(_ certificate: Certificate) throws -> String {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return SHA256.hash(data: serializer.serializedBytes).map { String(format: "%02X", $0) }.joined(separator: ":")
    }
}
