import Foundation
import PaddockProtocol

extension SQLStore {
    /// Who owns each task's job: what a submit token's control of tasks is checked against.
    public func owners(of tasks: [TaskID]) async throws -> [TaskID: String] {
        let ids = Array(Set(tasks.map(\.rawValue))).sorted()
        guard !ids.isEmpty else { return [:] }
        return try await engine.read { db in
            var owners: [TaskID: String] = [:]
            var start = 0
            while start < ids.count {
                let chunk = Array(ids[start..<min(start + 500, ids.count)])
                start += chunk.count
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
                for row in try SQLRow.fetchAll(db, sql: """
                    SELECT tasks.id AS id, jobs.owner AS owner FROM tasks JOIN jobs ON jobs.id = tasks.job_id
                    WHERE tasks.id IN (\(marks))
                    """, arguments: chunk) {
                    owners[TaskID(rawValue: row["id"])] = row["owner"]
                }
            }
            return owners
        }
    }
}
