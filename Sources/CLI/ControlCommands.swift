import ArgumentParser
import Foundation
import PaddockClient
import PaddockProtocol

/// A job or a task, as named on the command line (`j12`, `t34`).
enum Target {
    case job(JobID)
    case task(TaskID)

    init(_ text: String) throws {
        if text.hasPrefix("j"), let id = JobID(text) { self = .job(id); return }
        if text.hasPrefix("t"), let id = TaskID(text) { self = .task(id); return }
        throw ValidationError("'\(text)' is neither a job id (j12) nor a task id (t34)")
    }
}

func agentID(_ text: String) throws -> AgentID {
    guard text.hasPrefix("a"), let id = AgentID(text) else { throw ValidationError("'\(text)' is not an agent id (e.g. a3)") }
    return id
}

extension ClientOptions {
    /// POST/PATCH with a JSON body; prints the reply as JSON or through `render`.
    func send<Body: Encodable, Reply: Decodable>(_ method: String, _ path: String, _ body: Body, as: Reply.Type,
                                                 render: (Reply) -> String) async throws {
        let data = try await cli {
            try await client().raw(method, path, body: try WireJSON.encoder().encode(body), contentType: "application/json")
        }
        if json { say(String(decoding: data, as: UTF8.self)); return }
        say(render(try WireJSON.decoder().decode(Reply.self, from: data)))
    }
}

func describe(_ job: JobView) -> String {
    "job \(job.id) \"\(job.name)\" is \(job.state.rawValue): "
        + TaskState.allCases.filter { job.counts[$0] > 0 }.map { "\(job.counts[$0]) \($0.rawValue)" }.joined(separator: ", ")
}

func describe(_ task: TaskView) -> String {
    "task \(task.id) \"\(task.name)\" is \(task.state.rawValue)"
}

struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel", abstract: "Cancel a job (all its unfinished tasks) or one task; running ones are stopped.")
    @Argument(help: "A job id (j12) or a task id (t34).") var target: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        switch try Target(target) {
        case .job(let id): try await client.send("POST", APIPath.job(id, "cancel"), [String: String](), as: JobView.self, render: describe)
        case .task(let id): try await client.send("POST", APIPath.task(id, "cancel"), [String: String](), as: TaskView.self, render: describe)
        }
    }
}

struct RetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry", abstract: "Put failed or cancelled tasks (of a job, or one task) back in the queue.")
    @Argument(help: "A job id (j12) or a task id (t34).") var target: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        switch try Target(target) {
        case .job(let id): try await client.send("POST", APIPath.job(id, "retry"), [String: String](), as: JobView.self, render: describe)
        case .task(let id): try await client.send("POST", APIPath.task(id, "retry"), [String: String](), as: TaskView.self, render: describe)
        }
    }
}

struct PauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause", abstract: "Start nothing more of a job; running tasks finish (or are stopped with --kill).")
    @Argument(help: "A job id (j12).") var job: String
    @Flag(help: "Stop its running tasks too; they go back to the queue.") var kill = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        guard case .job(let id) = try Target(job) else { throw ValidationError("pause takes a job id (j12)") }
        try await client.send("POST", APIPath.job(id, "pause"), PauseRequest(kill: kill), as: JobView.self, render: describe)
    }
}

struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Resume a paused job.")
    @Argument(help: "A job id (j12).") var job: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        guard case .job(let id) = try Target(job) else { throw ValidationError("resume takes a job id (j12)") }
        try await client.send("POST", APIPath.job(id, "resume"), [String: String](), as: JobView.self, render: describe)
    }
}

struct PriorityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "priority", abstract: "Change the priority of a job (and its tasks) or of one task.")
    @Argument(help: "A job id (j12) or a task id (t34).") var target: String
    @Argument(help: "The new priority (higher runs first).") var priority: Int
    @OptionGroup var client: ClientOptions

    func run() async throws {
        switch try Target(target) {
        case .job(let id):
            try await client.send("PATCH", APIPath.job(id), JobPatch(priority: priority), as: JobView.self) {
                "job \($0.id) has priority \($0.priority)"
            }
        case .task(let id):
            try await client.send("PATCH", APIPath.tasks, TaskBulkPatch(ids: [id], priority: priority), as: BulkResult.self) { _ in
                "task \(id) has priority \(priority)"
            }
        }
    }
}

struct DrainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drain", abstract: "Let an agent finish what it runs and claim nothing new.")
    @Argument(help: "An agent id (a3).") var agent: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.send("PATCH", APIPath.agent(try agentID(agent)), AgentPatch(drain: true), as: AgentView.self) {
            "agent \($0.id) (\($0.name)) is \($0.state.rawValue)"
        }
    }
}

struct UndrainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "undrain", abstract: "Let a drained agent claim work again.")
    @Argument(help: "An agent id (a3).") var agent: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.send("PATCH", APIPath.agent(try agentID(agent)), AgentPatch(drain: false), as: AgentView.self) {
            "agent \($0.id) (\($0.name)) is \($0.state.rawValue)"
        }
    }
}
