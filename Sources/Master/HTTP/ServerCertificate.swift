import NIOSSL
import Synchronization

/// The master's TLS certificate chain and key (`--tls-cert`, `--tls-key`), read again on SIGHUP
/// (`CertificateReloader`): each new connection's handshake takes the pair read last, connections
/// already open keep theirs, and a pair that cannot be read leaves the current one in place.
final class ServerCertificate: Sendable {
    let files: TLSFiles
    private let current: Mutex<(chain: [NIOSSLCertificate], key: NIOSSLPrivateKey)>

    init(files: TLSFiles) throws(MasterStartError) {
        self.files = files
        current = Mutex(try Self.read(files))
    }

    /// Reads the files again; on success new handshakes use them. Returns the chain's first subject.
    @discardableResult
    func reload() throws(MasterStartError) -> String {
        let pair = try Self.read(files)
        current.withLock { $0 = pair }
        return pair.chain.first.map { String(describing: $0) } ?? ""
    }

    /// The server configuration: the pair read at start, replaced per handshake by the one read last.
    func configuration() -> TLSConfiguration {
        let (chain, key) = current.withLock { $0 }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                                     privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.sslContextCallback = { [self] _, promise in
            let (chain, key) = current.withLock { $0 }
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = chain.map { .certificate($0) }
            override.privateKey = .privateKey(key)
            promise.succeed(override)
        }
        return configuration
    }

    static func read(_ files: TLSFiles) throws(MasterStartError) -> (chain: [NIOSSLCertificate], key: NIOSSLPrivateKey) {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(files.certificateChain)
            key = try NIOSSLPrivateKey(file: files.privateKey, format: .pem)
        } catch {
            throw MasterStartError("cannot read the TLS certificate \(files.certificateChain) or key \(files.privateKey): \(error)")
        }
        guard !chain.isEmpty else { throw MasterStartError("no certificate in \(files.certificateChain)") }
        return (chain, key)
    }
}
