import Foundation
import PaddockProtocol

/// Where a master finds its PostgreSQL database:
/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?pool=N&sslmode=MODE&sslrootcert=FILE]`. The password comes
/// from the URL, else `PGPASSWORD`, else a file; it is never printed
/// (`description` leaves it out).
public struct PostgresLocation: Sendable, CustomStringConvertible {
    /// Seconds a statement may run, a lock may be waited for, and a transaction may sit idle
    /// (the PostgreSQL settings of every connection of the master).
    static let statementTimeout = 15
    static let lockTimeout = 5
    static let idleInTransactionTimeout = 30

    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    /// Connections this master keeps open at most (one thread each runs a transaction on it).
    public var poolSize: Int
    /// TLS to the server, as libpq's `sslmode` says it.
    public var tls: TLSMode = .disable

    public enum TLSMode: Sendable, Equatable {
        /// Plain TCP (a database on the same host or a private network).
        case disable
        /// Encrypted; the server's certificate is not checked (libpq's `require`).
        case require
        /// Encrypted, the certificate checked against `rootCertificate` (PEM; nil: the system's CAs) and
        /// the host name (libpq's `verify-full`).
        case verifyFull(rootCertificate: String?)
    }

    public static func isPostgresURL(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    public init(url text: String, passwordFile: String? = nil,
                environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard Self.isPostgresURL(text), let url = URLComponents(string: text) else {
            throw PaddockError.invalid("the store must be postgres://USER@HOST[:PORT]/DB", field: "store")
        }
        guard let host = url.host, !host.isEmpty else {
            throw PaddockError.invalid("the store URL names no host", field: "store")
        }
        let database = String(url.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else {
            throw PaddockError.invalid("the store URL names no database (postgres://USER@HOST/DB)", field: "store")
        }
        self.host = host
        self.port = url.port ?? 5432
        self.user = url.user ?? environment["PGUSER"] ?? "postgres"
        self.database = database
        self.poolSize = 8
        var rootCertificate: String?
        for item in url.queryItems ?? [] {
            switch item.name {
            case "pool":
                guard let value = item.value.flatMap(Int.init), (1...64).contains(value) else {
                    throw PaddockError.invalid("pool must be 1 to 64 connections", field: "store")
                }
                poolSize = value
            case "sslmode":
                switch item.value {
                case "disable": tls = .disable
                case "require": tls = .require
                case "verify-full": tls = .verifyFull(rootCertificate: nil)
                default:
                    throw PaddockError.invalid("sslmode is disable, require or verify-full", field: "store")
                }
            case "sslrootcert":
                guard let file = item.value, !file.isEmpty else {
                    throw PaddockError.invalid("sslrootcert names a PEM file of CA certificates", field: "store")
                }
                rootCertificate = file
            default:
                throw PaddockError.invalid(
                    "unknown store URL option '\(item.name)' (known: pool, sslmode=disable|require|verify-full, sslrootcert)",
                    field: "store")
            }
        }
        if let rootCertificate {
            guard case .verifyFull = tls else {
                throw PaddockError.invalid("sslrootcert goes with sslmode=verify-full", field: "store")
            }
            tls = .verifyFull(rootCertificate: rootCertificate)
        }
        if let password = url.password {
            self.password = password.removingPercentEncoding ?? password
        } else if let file = passwordFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw PaddockError.invalid("cannot read the store password file \(file)", field: "store-password-file")
            }
            self.password = text.trimmingCharacters(in: .whitespacesAndNewlines)
        } else {
            self.password = environment["PGPASSWORD"]
        }
    }

    public var description: String {
        let mode = switch tls {
        case .disable: ""
        case .require: "?sslmode=require"
        case .verifyFull: "?sslmode=verify-full"
        }
        return "postgres://\(user)@\(host):\(port)/\(database)" + mode
    }
}
