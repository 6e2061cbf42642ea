@testable import PaddockMaster
import Testing

/// The store writes `?` placeholders; PostgreSQL takes `$1, $2, …`, never inside a quoted literal
/// or identifier.
struct PostgresPlaceholderTests {
    @Test func placeholdersAreNumberedOutsideQuotesOnly() {
        #expect(PGTransaction.numberedPlaceholders("SELECT ?, ?") == "SELECT $1, $2")
        #expect(PGTransaction.numberedPlaceholders("WHERE a = '?' AND b = ?") == "WHERE a = '?' AND b = $1")
        #expect(PGTransaction.numberedPlaceholders(#"WHERE "c?" = ? AND d = 'é?ü' AND e = ?"#)
                == #"WHERE "c?" = $1 AND d = 'é?ü' AND e = $2"#)
        #expect(PGTransaction.numberedPlaceholders("VALUES (" + Array(repeating: "?", count: 12).joined(separator: ",") + ")")
                == "VALUES (" + (1...12).map { "$\($0)" }.joined(separator: ",") + ")")
        #expect(PGTransaction.numberedPlaceholders("") == "")
        #expect(PGTransaction.numberedPlaceholders("SELECT 'it''s ?' , ?") == "SELECT 'it''s ?' , $1")
    }
}
