import Foundation
import Hummingbird
import PaddockProtocol

/// The two reads the web dashboard needs beyond the rest of the API (issue 17).
extension MasterAPI {
    /// `GET /v1/jobs/{id}/graph`: the dependencies among the job's tasks and the jobs it runs after.
    func jobGraph(_ request: Request, _ context: MasterContext) async throws -> Response {
        try context.require(.read)
        let id = try Self.id(JobID.self, context, what: "job")
        return try Self.json(try await dashboardStore().jobGraph(id))
    }

    /// `GET /v1/throughput`: runs that ended per minute over the last hour (the current minute last).
    func throughput(_ request: Request, _ context: MasterContext) async throws -> Response {
        try context.require(.read)
        let minute = 60.0
        let now = Date().timeIntervalSince1970
        let since = Date(timeIntervalSince1970: (now / minute).rounded(.down) * minute - 59 * minute)
        return try Self.json(try await dashboardStore().throughput(since: since, bucketSeconds: Int(minute), buckets: 60))
    }

    func dashboardStore() throws -> any DashboardStore {
        guard let store = store as? any DashboardStore else {
            throw PaddockError.notFound("this master's store does not serve the dashboard's reads")
        }
        return store
    }
}
