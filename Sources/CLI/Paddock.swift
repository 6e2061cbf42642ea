import ArgumentParser
import Foundation

struct Paddock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paddock",
        abstract: "A job farm for render and compute hosts.",
        discussion: """
            Roles: `paddock master`, `paddock agent`, `paddock dev` (both in one process, zero config).
            Client commands talk to a master given by --master/PADDOCK_MASTER with --token/PADDOCK_TOKEN.
            """,
        version: "0.1.0",
        subcommands: [
            MasterCommand.self, AgentCommand.self, DevCommand.self,
            SubmitCommand.self, JobsCommand.self, JobCommand.self, TasksCommand.self, LogsCommand.self,
            AgentsCommand.self, CancelCommand.self, PauseCommand.self, ResumeCommand.self, RetryCommand.self,
            PriorityCommand.self, DrainCommand.self, UndrainCommand.self, WatchCommand.self, ConfigCommand.self,
            TokenCommand.self, WhoAmICommand.self,
        ])

    /// The roles also read `--config FILE` and `PADDOCK_*` variables: they are turned into flags
    /// (the ones not given on the command line) before the arguments are parsed. `main.swift` calls it.
    static func launch() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        do {
            // `paddock agent reset NAME` is a client command under the agent role's name: no config layering.
            if let first = arguments.first, let role = Role(rawValue: first), !Self.isClientSubcommand(arguments) {
                arguments = [first] + (try ConfigFile.layer(Array(arguments.dropFirst()), role: role,
                                                            environment: ProcessInfo.processInfo.environment))
            }
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    static func isClientSubcommand(_ arguments: [String]) -> Bool {
        arguments.count >= 2 && arguments[0] == "agent" && arguments[1] == AgentResetCommand.configuration.commandName
    }
}
