import Logging
import ServiceLifecycle
import UnixSignals

/// Reads the TLS certificate and key again on each SIGHUP (`systemctl reload paddock-master`), so a
/// renewed certificate is served without a restart; a pair that cannot be read is logged and the
/// current one kept.
struct CertificateReloader: Service {
    let certificate: ServerCertificate
    let logger: Logger

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            do throws(MasterStartError) {
                try certificate.reload()
                logger.notice("SIGHUP: TLS certificate \(certificate.files.certificateChain) read again; new connections use it")
            } catch {
                logger.error("SIGHUP: \(error); the certificate read before stays in use")
            }
        }
    }
}
