import ArgumentParser
import Foundation
import PaddockClient
import PaddockProtocol

extension TokenRole: ExpressibleByArgument {}

/// `paddock token create|list|revoke`: named tokens with roles (an admin's calls).
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Create, list and revoke named tokens (admin).",
        subcommands: [TokenCreateCommand.self, TokenListCommand.self, TokenRevokeCommand.self])
}

struct TokenCreateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Make a token and print its secret (shown this once; the master keeps only a hash).",
        discussion: """
            Roles: read (sees everything), submit (also submits jobs and controls the ones it owns: \
            a submit token's jobs belong to its name), admin (everything, agents and tokens included), \
            join (enrolls agents only; lasts a day unless --ttl says otherwise).
            """)
    @Option(help: "Its name: the owner of the jobs a submit token submits (letters, digits, -_.:).") var name: String
    @Option(help: "admin, submit, read or join.") var role: TokenRole
    @Option(help: "How long it works: e.g. 90m, 12h, 30d, 2w (default: no end; join tokens: 1d).") var ttl: String?
    @Option(help: "Join tokens: how many agents may enroll with it.") var uses: Int?
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let seconds = try ttl.map { text -> Double in
            guard let value = tokenTTL(text) else {
                throw ValidationError("--ttl is a duration such as 90m, 12h, 30d or 2w (at most ten years): '\(text)'")
            }
            return value
        }
        try await client.send("POST", APIPath.tokens, TokenRequest(name: name, role: role, ttl: seconds, uses: uses),
                              as: CreatedToken.self) { created in
            let token = created.token
            var lines = [created.secret, ""]
            var about = "token \(token.id) \"\(token.name)\", role \(token.role.rawValue)"
            if let expires = token.expiresAt { about += ", expires \(ISO8601DateFormatter().string(from: expires))" }
            if let max = token.maxUses { about += ", \(max) use\(max == 1 ? "" : "s")" }
            lines.append(about)
            lines.append("The secret above is shown only now: keep it (e.g. in a file of mode 0600).")
            return lines.joined(separator: "\n")
        }
    }
}

struct TokenListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List named tokens (never their secrets).")
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.show(APIPath.tokens, as: Page<TokenView>.self) { page in
            table(["ID", "NAME", "ROLE", "STATE", "CREATED", "EXPIRES", "USES"], page.items.map { token in
                let formatter = ISO8601DateFormatter()
                return [token.id.description, token.name, token.role.rawValue, token.state.rawValue,
                        ago(token.createdAt), token.expiresAt.map { formatter.string(from: $0) } ?? "-",
                        token.role == .join ? "\(token.uses)/\(token.maxUses.map(String.init) ?? "∞")" : "-"]
            })
        }
    }
}

struct TokenRevokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a token: it stops working at once.")
    @Argument(help: "A token id (k3).") var id: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        guard id.hasPrefix("k"), let token = TokenID(id) else { throw ValidationError("'\(id)' is not a token id (e.g. k3)") }
        let data = try await cli { try await client.client().raw("DELETE", APIPath.token(token)) }
        if client.json { say(String(decoding: data, as: UTF8.self)); return }
        let view = try WireJSON.decoder().decode(TokenView.self, from: data)
        say("token \(view.id) \"\(view.name)\" is \(view.state.rawValue)")
    }
}

/// `paddock agent reset NAME` (admin): lets a host enroll under NAME without the enrolled agent's
/// credential, or lets a deleted agent back.
struct AgentResetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset",
        abstract: "Let a host enroll under NAME (the enrolled agent's credential stops working), or let a deleted agent back.")
    @Argument(help: "The agent's name.") var name: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.send("POST", APIPath.agentReset, AgentResetRequest(name: name), as: AgentResetResult.self) { result in
            switch result.outcome {
            case .reset: "agent \(result.name)\(result.agent.map { " (\($0))" } ?? ""): its credential no longer works; "
                + "the next agent to enroll under this name needs none"
            case .allowed: "agent \(result.name) was deleted; it may enroll again"
            }
        }
    }
}

/// `paddock whoami`: the name and role of the token in use.
struct WhoAmICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "whoami", abstract: "Show the name and role of the token in use.")
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.show(APIPath.whoami, as: WhoAmI.self) { who in
            "\(who.name) (role \(who.role)\(who.token.map { ", token \($0)" } ?? ""))"
        }
    }
}

/// A token's lifetime: a number and s, m, h, d or w; at most ten years.
func tokenTTL(_ text: String) -> Double? {
    let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
    guard !trimmed.isEmpty, trimmed.count <= 32 else { return nil }
    let number = trimmed.prefix { $0.isNumber || $0 == "." }
    guard let value = Double(number), value.isFinite, value > 0 else { return nil }
    let unit: Double
    switch trimmed.dropFirst(number.count) {
    case "", "s": unit = 1
    case "m", "min": unit = 60
    case "h": unit = 3600
    case "d": unit = 86400
    case "w": unit = 7 * 86400
    default: return nil
    }
    let seconds = value * unit
    return seconds >= 1 && seconds <= TokenRequest.maxTTL ? seconds : nil
}
