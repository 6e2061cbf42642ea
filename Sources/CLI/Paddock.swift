import ArgumentParser
import Foundation

@main
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
            PriorityCommand.self, DrainCommand.self, UndrainCommand.self, WatchCommand.self,
        ])
}
