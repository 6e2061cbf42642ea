import Foundation
import Hummingbird
import PaddockProtocol

/// `GET /v1/changes` (issue 17): the dashboard's one long-poll. It answers at once when the farm's
/// visible state moved since the version the caller saw, else when it moves, or after `wait`
/// seconds. A version is this master's (an instance and a count): one seen on another master
/// behind the same frontend is taken as "now", so a tab switching masters waits rather than
/// refreshing twice; what it missed meanwhile shows at the next answer.
extension MasterAPI {
    /// This master process's part of every version it gives.
    static let changeInstance = String(UInt32.random(in: 0...UInt32.max), radix: 36)

    func changesSince(_ request: Request, _ context: MasterContext) async throws -> Response {
        try context.require(.read)
        let wait = try Self.longPollWait(request)
        let current = await changes.generation
        if let after = Self.query(request, "after") {
            let parts = after.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, parts[0].count <= 16, let seen = UInt64(parts[1]) else {
                throw PaddockError.invalid("after is a version from an earlier answer", field: "after")
            }
            // Another master's version, or this one's current: wait for the next change.
            if parts[0] != Self.changeInstance || seen == current {
                await changes.wait(since: current, timeout: .milliseconds(Int(wait * 1000)))
            }
        }
        return try Self.json(ChangesView(version: "\(Self.changeInstance).\(await changes.generation)"))
    }
}
