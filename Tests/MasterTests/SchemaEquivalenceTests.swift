import Foundation
import PaddockMaster
import Testing

/// The two schemas are written by hand (SQLite's migrations one by one, PostgreSQL's cumulative):
/// after every migration both must describe the same tables, columns (types mapped) and indexes.
@Suite struct SchemaEquivalenceTests {
    /// A column as both engines can say it: its name and its kind of value.
    struct Column: Hashable, CustomStringConvertible {
        var name: String
        var kind: String
        var description: String { "\(name) \(kind)" }
    }

    /// Tables of the store's own (each engine's migration bookkeeping aside).
    static let bookkeeping: Set<String> = ["grdb_migrations", "paddock_migrations", "sqlite_sequence"]

    /// SQLite's declared types and PostgreSQL's, as one kind.
    static func kind(_ type: String) -> String {
        switch type.lowercased() {
        case "integer", "bigint", "int", "smallint", "bigserial", "serial": "integer"
        case "real", "double precision", "float8", "numeric": "real"
        case "text", "character varying", "varchar": "text"
        case "blob", "bytea": "bytes"
        case "boolean", "bool": "integer"  // SQLite has no booleans: 0/1
        default: type.lowercased()
        }
    }

    static func sqliteSchema(_ store: SQLStore) async throws -> (tables: [String: Set<Column>], indexes: [String: [String]]) {
        try await store.engine.read { db in
            var tables: [String: Set<Column>] = [:]
            var indexes: [String: [String]] = [:]
            let names = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            for table in names where !bookkeeping.contains(table) {
                let columns = try SQLRow.fetchAll(db, sql: "SELECT name, type FROM pragma_table_info(?)", arguments: [table])
                tables[table] = Set(columns.map { Column(name: $0["name"], kind: kind($0["type"])) })
                for index in try SQLRow.fetchAll(db, sql: "SELECT name, origin FROM pragma_index_list(?)", arguments: [table]) {
                    // Only indexes the schema creates by name (not those a PRIMARY KEY or UNIQUE makes).
                    guard (index["origin"] as String) == "c" else { continue }
                    let name: String = index["name"]
                    indexes[name] = try String.fetchAll(db, sql: "SELECT name FROM pragma_index_info(?) ORDER BY seqno",
                                                        arguments: [name])
                }
            }
            return (tables, indexes)
        }
    }

    static func postgresSchema(_ store: SQLStore) async throws -> (tables: [String: Set<Column>], indexes: [String: [String]]) {
        try await store.engine.read { db in
            var tables: [String: Set<Column>] = [:]
            var indexes: [String: [String]] = [:]
            for row in try SQLRow.fetchAll(db, sql: """
                SELECT table_name, column_name, data_type FROM information_schema.columns
                WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position
                """) {
                let table: String = row["table_name"]
                guard !bookkeeping.contains(table) else { continue }
                tables[table, default: []].insert(Column(name: row["column_name"], kind: kind(row["data_type"])))
            }
            // Named indexes (constraint-backed ones, primary keys and unique constraints, aside), their columns in order.
            for row in try SQLRow.fetchAll(db, sql: """
                SELECT i.relname AS name, a.attname AS column, k.ord AS ord
                FROM pg_index x
                JOIN pg_class i ON i.oid = x.indexrelid
                JOIN pg_class t ON t.oid = x.indrelid
                JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = current_schema()
                CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
                LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
                WHERE NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
                ORDER BY i.relname, k.ord
                """) {
                let table: String = row["name"]
                indexes[table, default: []].append((row["column"] as String?) ?? "(expression)")
            }
            return (tables, indexes)
        }
    }

    @Test func sqliteAndPostgresDescribeTheSameTablesColumnsAndIndexes() async throws {
        let sqlite = try await Self.sqliteSchema(try await StoreFixture.make(.sqlite).store)
        let postgres = try await Self.postgresSchema(try await StoreFixture.make(.postgres).store)
        // What is compared is the real schema, not two empty readings.
        #expect(sqlite.tables["tasks"]?.contains(Column(name: "runs", kind: "integer")) == true)
        #expect(sqlite.tables.count >= 12 && sqlite.indexes.count >= 5, "\(sqlite.tables.count) tables, \(sqlite.indexes.count) indexes")
        #expect(postgres.indexes["tasks_job_queue"]?.isEmpty == false)
        let onlySQLite = Set(sqlite.tables.keys).subtracting(postgres.tables.keys).sorted()
        let onlyPostgres = Set(postgres.tables.keys).subtracting(sqlite.tables.keys).sorted()
        #expect(onlySQLite.isEmpty && onlyPostgres.isEmpty, "tables only in SQLite: \(onlySQLite); only in PostgreSQL: \(onlyPostgres)")
        for table in Set(sqlite.tables.keys).intersection(postgres.tables.keys).sorted() {
            let lite = sqlite.tables[table] ?? [], pg = postgres.tables[table] ?? []
            let inLite = lite.subtracting(pg).map(\.description).sorted(), inPG = pg.subtracting(lite).map(\.description).sorted()
            #expect(lite == pg, "\(table): only in SQLite \(inLite); only in PostgreSQL \(inPG)")
        }
        #expect(sqlite.indexes == postgres.indexes,
                "indexes differ: SQLite \(sqlite.indexes.sorted { $0.key < $1.key }); PostgreSQL \(postgres.indexes.sorted { $0.key < $1.key })")
    }
}
