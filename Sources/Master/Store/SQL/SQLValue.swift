import Foundation

/// One value crossing between the store's logic and a database engine. The
/// store's SQL is written once for SQLite and PostgreSQL; values are kept to
/// the four storage classes both have (booleans travel as integers 0/1).
public enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob(Data)
}

/// What can be bound to a `?` placeholder.
public protocol SQLBindable {
    var sqlValue: SQLValue { get }
}

extension Int: SQLBindable { public var sqlValue: SQLValue { .integer(Int64(self)) } }
extension Int64: SQLBindable { public var sqlValue: SQLValue { .integer(self) } }
extension Double: SQLBindable { public var sqlValue: SQLValue { .real(self) } }
extension String: SQLBindable { public var sqlValue: SQLValue { .text(self) } }
extension Data: SQLBindable { public var sqlValue: SQLValue { .blob(self) } }
extension Bool: SQLBindable { public var sqlValue: SQLValue { .integer(self ? 1 : 0) } }
extension SQLValue: SQLBindable { public var sqlValue: SQLValue { self } }
extension Optional: SQLBindable where Wrapped: SQLBindable {
    public var sqlValue: SQLValue { self?.sqlValue ?? .null }
}

/// What a column can be read as. Conversions are lenient across the two
/// engines' types (an integer column read as Bool, a PostgreSQL numeric sum
/// read as Int64), strict about what cannot be converted.
public protocol SQLDecodable {
    /// nil when the value cannot be this type (a schema bug, reported with the column's name).
    static func decode(_ value: SQLValue) -> Self?
}

extension Int64: SQLDecodable {
    public static func decode(_ value: SQLValue) -> Int64? {
        switch value {
        case .integer(let v): return v
        case .real(let v): return v.isFinite && v.rounded() == v ? Int64(exactly: v) : nil
        case .text(let v): return Int64(v)
        default: return nil
        }
    }
}

extension Int: SQLDecodable {
    public static func decode(_ value: SQLValue) -> Int? { Int64.decode(value).flatMap { Int(exactly: $0) } }
}

extension Double: SQLDecodable {
    public static func decode(_ value: SQLValue) -> Double? {
        switch value {
        case .integer(let v): return Double(v)
        case .real(let v): return v
        case .text(let v): return Double(v)
        default: return nil
        }
    }
}

extension Bool: SQLDecodable {
    public static func decode(_ value: SQLValue) -> Bool? { Int64.decode(value).map { $0 != 0 } }
}

extension String: SQLDecodable {
    public static func decode(_ value: SQLValue) -> String? {
        switch value {
        case .text(let v): return v
        case .blob(let v): return String(data: v, encoding: .utf8)
        case .integer(let v): return String(v)
        case .real(let v): return String(v)
        case .null: return nil
        }
    }
}

extension Data: SQLDecodable {
    public static func decode(_ value: SQLValue) -> Data? {
        switch value {
        case .blob(let v): return v
        case .text(let v): return Data(v.utf8)
        default: return nil
        }
    }
}

extension Optional: SQLDecodable where Wrapped: SQLDecodable {
    public static func decode(_ value: SQLValue) -> Wrapped?? {
        if case .null = value { return .some(nil) }
        return Wrapped.decode(value).map { .some($0) }
    }
}

/// One result row, with its columns by name (as the engine spelled them: use lower-case aliases).
public struct SQLRow: Sendable {
    /// Column names to indexes, shared by all rows of one result.
    let columns: [String: Int]
    let values: [SQLValue]

    init(columns: [String: Int], values: [SQLValue]) {
        self.columns = columns
        self.values = values
    }

    public func value(_ column: String) -> SQLValue {
        columns[column].map { values[$0] } ?? .null
    }

    /// The column as `T`. A column of the wrong type is a bug in the store's own schema or SQL
    /// (never in a client's input): it stops the process as GRDB's typed subscripts do.
    public subscript<T: SQLDecodable>(_ column: String) -> T {
        guard let index = columns[column] else { preconditionFailure("no column \(column) in the result") }
        guard let value = T.decode(values[index]) else {
            preconditionFailure("column \(column) holds \(values[index]), not \(T.self)")
        }
        return value
    }

    public subscript<T: SQLDecodable>(_ index: Int) -> T {
        guard values.indices.contains(index), let value = T.decode(values[index]) else {
            preconditionFailure("column \(index) of the result is not \(T.self)")
        }
        return value
    }
}
