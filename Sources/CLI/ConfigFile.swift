import ArgumentParser
import Foundation
import PaddockMaster
import PaddockProtocol
import Yams

/// The settings a role reads from `--config FILE` (YAML) and from `PADDOCK_*` variables, besides
/// its flags. Precedence: flag > environment > file > default. Keys are the long flag names.
enum ConfigKey: Sendable, Equatable {
    case text, size, duration, number, count, list, url, listen, choice([String])
    /// `RATE/BURST` or `off`.
    case rateLimit
    /// A duration of up to ten years (`90d`).
    case retention
    /// IP addresses or CIDR ranges, as a YAML list or comma-separated.
    case networks
    /// `sqlite`, or a postgres:// URL.
    case store

    /// A YAML sequence is accepted (joined with commas).
    var isList: Bool { self == .list || self == .networks }
}

enum Role: String, CaseIterable, ExpressibleByArgument {
    case master, agent

    /// Every key a role's file may hold, with how its value is checked.
    var keys: [String: ConfigKey] {
        switch self {
        case .master:
            ["listen": .listen, "data": .text, "store": .store, "store-password-file": .text, "join-token": .text, "join-token-file": .text, "admin-token": .text,
             "admin-token-file": .text, "lease-timeout": .duration, "blocklist-after": .count, "public-url": .url,
             "agent-package": .text, "trusted-proxy": .networks, "tls-cert": .text, "tls-key": .text, "tls-self-signed": .text,
             "rate-limit": .rateLimit, "agent-rate-limit": .rateLimit, "idle-timeout": .duration, "log-retention": .retention, "log-retention-bytes": .size, "log-level": .choice(["trace", "debug", "info", "notice", "warning", "error"])]
        case .agent:
            ["master": .url, "join-token": .text, "join-token-file": .text, "name": .text, "work-dir": .text,
             "cpus": .number, "ram": .size, "disk": .size, "gpus": .count, "tags": .list, "attr": .list, "amount": .list, "path-mapping": .text, "slots": .count,
             "prefetch": .text, "reserve-ram": .size, "on-stop": .choice(["requeue", "drain"]),
             "ca-file": .text, "task-memory-limit": .text, "task-pids-max": .count, "task-cgroups": .choice(["auto", "off"]),
             "warm-children": .text, "task-user": .text, "session-linger": .duration, "log-level": .choice(["trace", "debug", "info", "notice", "warning", "error"])]
        }
    }

    static func environmentName(_ key: String) -> String {
        "PADDOCK_" + key.uppercased().replacingOccurrences(of: "-", with: "_")
    }
}

/// One problem in a config file, with its line.
struct ConfigProblem: CustomStringConvertible, Equatable {
    let line: Int
    let message: String
    var description: String { "line \(line): \(message)" }
}

enum ConfigFile {
    /// Reads a YAML mapping of settings; every problem is reported with its line.
    static func read(_ path: String, role: Role) throws -> (values: [String: String], problems: [ConfigProblem]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read config file \(path)")
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: String(decoding: data, as: UTF8.self))
        } catch {
            throw ValidationError("\(path) is not valid YAML: \(error)")
        }
        guard let node else { return ([:], []) }
        guard case .mapping(let mapping) = node else {
            return ([:], [ConfigProblem(line: node.mark?.line ?? 1, message: "the file must be a mapping of settings")])
        }
        var values: [String: String] = [:]
        var problems: [ConfigProblem] = []
        for (keyNode, valueNode) in mapping {
            let line = keyNode.mark?.line ?? 0
            guard let key = keyNode.string else {
                problems.append(ConfigProblem(line: line, message: "a key must be text"))
                continue
            }
            guard let kind = role.keys[key] else {
                let known = role.keys.keys.sorted().joined(separator: ", ")
                problems.append(ConfigProblem(line: line, message: "unknown key '\(key)' for the \(role.rawValue) (known: \(known))"))
                continue
            }
            let text: String
            switch valueNode {
            case .scalar(let scalar): text = scalar.string
            case .sequence(let sequence) where kind.isList:
                text = sequence.compactMap(\.string).joined(separator: ",")
            default:
                problems.append(ConfigProblem(line: valueNode.mark?.line ?? line, message: "'\(key)' must be a single value"))
                continue
            }
            if let problem = check(key, text, kind) {
                problems.append(ConfigProblem(line: valueNode.mark?.line ?? line, message: problem))
                continue
            }
            values[key] = text
        }
        return (values, problems)
    }

    /// Why `value` is not acceptable for `key`, or nil when it is.
    static func check(_ key: String, _ value: String, _ kind: ConfigKey) -> String? {
        switch kind {
        case .text: return value.isEmpty ? "'\(key)' is empty" : nil
        case .size: return ByteSize.parse(value) == nil ? "'\(key)' is not a size such as 8GiB or 512MiB: '\(value)'" : nil
        case .duration: return DurationText.parse(value) == nil ? "'\(key)' is not a duration such as 30s or 5m: '\(value)'" : nil
        case .number:
            guard let number = Double(value), number.isFinite, number > 0 else { return "'\(key)' must be a number > 0: '\(value)'" }
            return nil
        case .count: return Int(value).map { $0 >= 0 } == true ? nil : "'\(key)' must be a whole number ≥ 0: '\(value)'"
        case .list: return nil
        case .store:
            if value == "sqlite" { return nil }
            // The location is checked without reading any password (the file may be elsewhere).
            do { _ = try PostgresLocation(url: value, environment: [:]) } catch let error as PaddockError {
                return "'\(key)' must be sqlite or postgres://USER@HOST[:PORT]/DB: \(error.message)"
            } catch { return "'\(key)': \(error)" }
            return nil
        case .networks:
            let specs = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            do { _ = try TrustedProxies(specs) } catch { return "'\(key)': \(error)" }
            return nil
        case .url:
            // Plain URL characters only: a master URL ends up in shell scripts (the agent install script).
            guard value.allSatisfy({ $0.isASCII && !$0.isWhitespace && !"'\"`\\<>{}|^".contains($0) }),
                  let url = URL(string: value), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                return "'\(key)' must be an http(s) URL: '\(value)'"
            }
            return nil
        case .listen:
            let parts = value.split(separator: ":")
            return parts.count >= 2 && Int(parts[parts.count - 1]).map { (0...65535).contains($0) } == true
                ? nil : "'\(key)' is HOST:PORT: '\(value)'"
        case .retention:
            return DurationText.parse(value, maximum: MasterOptions.longestRetention).map { $0 >= 1 } == true
                ? nil : "'\(key)' is a duration of at least 1s such as 30d: '\(value)'"
        case .rateLimit:
            return RateLimit.parse(value) == nil ? "'\(key)' is RATE/BURST (e.g. 1000/2000) or off: '\(value)'" : nil
        case .choice(let choices):
            return choices.contains(value) ? nil : "'\(key)' is one of \(choices.joined(separator: ", ")): '\(value)'"
        }
    }

    /// Adds to `arguments` (a role's command line) the settings it does not give itself: first from
    /// `PADDOCK_*` variables, then from `--config FILE`. A bad file stops the program with its problems.
    static func layer(_ arguments: [String], role: Role, environment: [String: String]) throws -> [String] {
        var given = Set<String>()
        var configPath: String?
        var layered: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--") else { layered.append(argument); continue }
            let name = String(argument.dropFirst(2).prefix { $0 != "=" })
            guard name == "config" else {
                given.insert(name)
                layered.append(argument)
                continue
            }
            // `--config FILE` or `--config=FILE` is consumed here: the role never sees it.
            if let equals = argument.firstIndex(of: "=") {
                configPath = String(argument[argument.index(after: equals)...])
            } else if index < arguments.count {
                configPath = arguments[index]
                index += 1
            } else {
                throw ValidationError("--config needs a file")
            }
        }
        var file: [String: String] = [:]
        if let configPath {
            let (values, problems) = try read(configPath, role: role)
            guard problems.isEmpty else {
                throw ValidationError("\(configPath):\n" + problems.map { "  \($0)" }.joined(separator: "\n"))
            }
            file = values
        }
        for key in role.keys.keys.sorted() where !given.contains(key) {
            if let value = environment[Role.environmentName(key)] ?? file[key] {
                layered += ["--\(key)", value]
            }
        }
        return layered
    }
}

/// `paddock config check FILE`: reports unknown keys and bad values with their lines.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Check configuration files.", subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check", abstract: "Report unknown keys and bad values of a master or agent config file, with their lines.")
        @Argument(help: "The YAML file.") var file: String
        @Option(help: "master or agent (default: guessed from the file name, else from its keys).") var role: Role?

        func run() throws {
            let role = try self.role ?? guessRole()
            let (values, problems) = try ConfigFile.read(file, role: role)
            if problems.isEmpty {
                print("\(file): a valid \(role.rawValue) config (\(values.count) setting(s))")
                return
            }
            for problem in problems { FileHandle.standardError.write(Data("\(file):\(problem.line): \(problem.message)\n".utf8)) }
            throw ExitCode.failure
        }

        func guessRole() throws -> Role {
            let name = URL(fileURLWithPath: file).lastPathComponent
            if name.contains("agent") { return .agent }
            if name.contains("master") { return .master }
            let text = FileManager.default.contents(atPath: file).map { String(decoding: $0, as: UTF8.self) } ?? ""
            return text.contains("work-dir") || text.contains("\nmaster:") || text.hasPrefix("master:") ? .agent : .master
        }
    }
}
