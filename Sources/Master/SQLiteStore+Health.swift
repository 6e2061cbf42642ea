import Foundation
import GRDB

extension SQLiteStore {
    /// The database answers: one trivial read on a pooled connection (`/healthz`).
    public func ping() async throws {
        try await pool.read { db in _ = try Int.fetchOne(db, sql: "SELECT 1") }
    }
}
