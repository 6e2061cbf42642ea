import Crypto
import Foundation
import Hummingbird
import PaddockOpenJD
import PaddockProtocol

extension MasterAPI {
    /// The body of `POST /v1/jobs`: a Paddock job, or an Open Job Description template with its
    /// parameter values (`{"openjd": {"template": ..., "parameters": ...}}`, docs/OPENJD.md),
    /// converted into a Paddock job; either way decoded, then checked by the one validation step
    /// (`WrittenJob.validated()`), whose dependency graph the store keeps. The warnings say what of
    /// the template Paddock does not enforce; they are answered once, with the submission.
    static func jobSubmission(from request: Request, hashingBody: Bool) async throws
        -> (ValidatedJob, warnings: [String], bodyHash: String?) {
        let buffer = try await body(of: request, limit: BodyLimit.jobSpec)
        let bytes = buffer.readableBytesView
        // Only a submission under an Idempotency-Key keeps its body's hash (a retry must match it).
        let bodyHash = hashingBody ? SecretHash.hex(SHA256.hash(data: Data(bytes))) : nil
        guard !NULGuard.jsonHasNUL(bytes) else {
            throw PaddockError.invalid("strings must not contain NUL (\\u0000)")
        }
        if OpenJDRequest.mayBe(bytes) {
            do {
                if let converted = try OpenJDRequest.convert(json: bytes) {
                    return (converted.job, converted.warnings, bodyHash)
                }
            } catch {
                throw PaddockError.invalid(error.message, field: error.field)
            }
        }
        let written: WrittenJob
        do {
            written = try WireJSON.decoder().decode(WrittenJob.self, from: Data(bytes))
        } catch {
            throw WireJSON.describe(error)
        }
        do {
            return (try written.validated(), [], bodyHash)
        } catch {
            throw error.refusal
        }
    }
}
