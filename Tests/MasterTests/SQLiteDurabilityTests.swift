import Foundation
@testable import PaddockMaster
import Testing

/// The settings an acknowledged write's durability rests on, read back from the connection that
/// commits every write (GRDB's WAL set-up used to overwrite `synchronous` after ours).
@Suite struct SQLiteDurabilityTests {
    @Test func theWriterCommitsWithFullSyncAndKeepsSubJournalsInMemory() async throws {
        let dir = NSTemporaryDirectory() + "paddock-durability-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let engine = try SQLiteEngine(path: dir + "/p.sqlite")
        let (journal, settings) = try await engine.write { db -> (String, [Int]) in
            (try db.fetchAll("PRAGMA journal_mode", [])[0][0],
             try (db.fetchAll("PRAGMA synchronous", []) + db.fetchAll("PRAGMA temp_store", [])).map { $0[0] as Int })
        }
        #expect(journal == "wal")
        #expect(settings == [2, 2])  // synchronous FULL (2), temp_store MEMORY (2)
        // A second engine on the same file (a restarted master) sets them again.
        let again = try SQLiteEngine(path: dir + "/p.sqlite")
        let synchronous = try await again.write { db -> Int in try db.fetchAll("PRAGMA synchronous", [])[0][0] }
        #expect(synchronous == 2)
    }
}
