import ArgumentParser
import Foundation
import PaddockClient
import PaddockOpenJD
import PaddockProtocol
import Yams

/// How client commands reach the master.
struct ClientOptions: ParsableArguments {
    @Option(help: "URL of the master (env PADDOCK_MASTER).")
    var master: String = ProcessInfo.processInfo.environment["PADDOCK_MASTER"] ?? "http://127.0.0.1:8420"
    @Option(help: "API token (env PADDOCK_TOKEN).")
    var token: String = ProcessInfo.processInfo.environment["PADDOCK_TOKEN"] ?? ""
    @Option(help: "Trust only the CA certificates in this PEM file for an https:// master (env PADDOCK_CA_FILE).")
    var caFile: String = ProcessInfo.processInfo.environment["PADDOCK_CA_FILE"] ?? ""
    @Flag(help: "Print the master's JSON instead of a table.")
    var json = false

    func client() throws -> MasterClient {
        guard let url = URL(string: master), url.scheme == "http" || url.scheme == "https" else {
            throw ValidationError("--master must be an http(s) URL")
        }
        guard !caFile.isEmpty else { return MasterClient(baseURL: url, token: token) }
        do { return try MasterClient(baseURL: url, token: token, caFile: caFile) } catch {
            throw ValidationError("--ca-file \(caFile): \(error)")
        }
    }

    /// GET a resource; print it as JSON or hand it to `render`.
    func show<T: Decodable>(_ path: String, query: [String: String] = [:], as: T.Type, render: (T) -> String) async throws {
        let data = try await cli { try await client().raw("GET", path, query: query) }
        if json {
            say(String(decoding: data, as: UTF8.self))
            return
        }
        say(render(try WireJSON.decoder().decode(T.self, from: data)))
    }
}

/// Runs a client call, turning its failure into a one-line message and exit code 1.
func cli<T>(reporting describe: (ClientError) -> String? = { _ in nil }, _ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as ClientError {
        var message = "paddock: \(describe(error) ?? error.description)\n"
        if case .transport = error, ProcessInfo.processInfo.environment["PADDOCK_MASTER"] == nil,
           !CommandLine.arguments.contains(where: { $0 == "--master" || $0.hasPrefix("--master=") }) {
            // Nobody said where the master is: say how to, rather than only that 127.0.0.1:8420 is silent.
            message += "paddock: no master was given, so the default http://127.0.0.1:8420 was tried: "
                + "pass --master URL or set PADDOCK_MASTER (and --token or PADDOCK_TOKEN)\n"
        }
        FileHandle.standardError.write(Data(message.utf8))
        throw ExitCode.failure
    }
}

/// A job file that cannot be read or parsed: said with its name (and line and column where known).
struct JobFileError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Says what is wrong with a file and exits 1: a file's fault is no misuse of the command, so no
/// usage banner follows (that is for wrong arguments).
func fileError(_ message: String) throws -> Never {
    FileHandle.standardError.write(Data("paddock: \(message)\n".utf8))
    throw ExitCode.failure
}

/// A plain text table, columns padded to their widest cell.
func table(_ header: [String], _ rows: [[String]]) -> String {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    return all.map { row in
        row.enumerated().map { index, cell in
            index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }.joined(separator: "\n")
}

func ago(_ date: Date?) -> String {
    guard let date else { return "-" }
    let seconds = Int(Date().timeIntervalSince(date))
    switch seconds {
    case ..<60: return "\(max(0, seconds))s ago"
    case ..<3600: return "\(seconds / 60)m ago"
    case ..<86400: return "\(seconds / 3600)h ago"
    default: return "\(seconds / 86400)d ago"
    }
}

struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "submit",
        abstract: "Submit a job file (YAML or JSON), or an Open Job Description template (jobtemplate-2023-09).")
    @Argument(help: "The job file; - reads standard input.")
    var file: String
    @Option(name: .customShort("p"), help: ArgumentHelp("A job parameter of an OpenJD template.", valueName: "NAME=VALUE"))
    var parameters: [String] = []
    @Option(help: ArgumentHelp("Path mapping rules of an OpenJD template's job (pathmapping-1.0 JSON), applied on the agents before their own.",
                               valueName: "FILE"))
    var pathMappingRules: String?
    @Option(name: .customLong("env"), help: ArgumentHelp("An OpenJD environment template (environment-2023-09) applied around an OpenJD job; repeat for several, entered in order.",
                                                         valueName: "FILE"))
    var environments: [String] = []
    @OptionGroup var client: ClientOptions

    /// An OpenJD error said of the file it is in: `environments[1].environment.name` is the second
    /// `--env` file's `environment.name`.
    static func locate(_ error: OpenJDError, file: String, environments: [String]) -> String {
        let prefix = "environments["
        guard error.field.hasPrefix(prefix), let close = error.field.firstIndex(of: "]"),
              let index = Int(error.field[error.field.index(error.field.startIndex, offsetBy: prefix.count)..<close]),
              environments.indices.contains(index) else { return "\(file): \(error)" }
        let rest = error.field[error.field.index(after: close)...].drop { $0 == "." }
        return "\(environments[index]): " + (rest.isEmpty ? error.message : "\(rest): \(error.message)")
    }

    func run() async throws {
        let text: Data
        if file == "-" {
            text = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let data = FileManager.default.contents(atPath: file) else {
                try fileError("cannot read \(file)")
            }
            text = data
        }
        let body: Data
        do {
            if let template = try OpenJDTemplateFile.template(text) {
                let directory = file == "-" ? FileManager.default.currentDirectoryPath
                    : URL(fileURLWithPath: file).deletingLastPathComponent().path
                var rules: TemplateValue?
                if let pathMappingRules {
                    guard let data = FileManager.default.contents(atPath: pathMappingRules) else {
                        throw ValidationError("cannot read \(pathMappingRules)")
                    }
                    guard let value = try? TemplateValue(json: data) else { throw ValidationError("\(pathMappingRules) is not JSON") }
                    rules = value
                }
                var environmentTemplates: [TemplateValue] = []
                for path in environments {
                    guard let data = FileManager.default.contents(atPath: path) else { try fileError("cannot read \(path)") }
                    do {
                        environmentTemplates.append(try OpenJDTemplateFile.environment(data, file: path))
                    } catch let error as OpenJDError {
                        try fileError("\(path): \(error)")
                    }
                }
                body = try OpenJDTemplateFile.body(template: template, parameters: parameters, templateDirectory: directory,
                                                   pathMappingRules: rules, environments: environmentTemplates)
            } else if !parameters.isEmpty || pathMappingRules != nil || !environments.isEmpty {
                throw ValidationError("-p, --env and --path-mapping-rules are for an OpenJD template; \(file) is not one")
            } else {
                body = try Self.jsonBody(text, name: file)
                // Checked here by the master's own validation: a mistake is said before anything is sent.
                if let refusal = Self.refusal(of: body) {
                    try fileError(Self.locate(refusal, in: text, file: file) ?? "\(file): \(refusal.message)")
                }
            }
        } catch let error as OpenJDError {
            try fileError(Self.locate(error, file: file, environments: environments))
        } catch let error as JobFileError {
            try fileError(error.description)
        }
        let data: Data
        do {
            data = try await cli(reporting: { error in Self.locate(error, in: text, file: file) }) {
                try await Self.post(body, with: try client.client())
            }
        }
        if client.json { say(String(decoding: data, as: UTF8.self)); return }
        let job = try WireJSON.decoder().decode(JobView.self, from: data)
        say("submitted job \(job.id) \"\(job.name)\": \(job.counts.total) task(s)")
        job.warnings.forEach { say("warning: \($0)") }
    }

    /// POSTs the job under one Idempotency-Key for this invocation, and retries while the master (or
    /// its frontend) is away or the answer was lost: a retry of a submission that was stored answers
    /// that job, never a second one. Gives up after about two minutes.
    static func post(_ body: Data, with client: MasterClient) async throws(ClientError) -> Data {
        let key = UUID().uuidString
        let deadline = ContinuousClock.now + .seconds(120)
        var pause = 0.25
        while true {
            do {
                return try await client.raw("POST", APIPath.jobs, body: body, contentType: "application/json",
                                            headers: ["Idempotency-Key": key], timeout: 60)
            } catch {
                let retryable: Bool
                switch error {
                case .transport: retryable = true
                case .api(let answer): retryable = [502, 503, 504, 429].contains(answer.status)
                case .protocolMismatch: retryable = false
                }
                guard retryable, ContinuousClock.now + .milliseconds(Int(pause * 1000)) < deadline else { throw error }
                FileHandle.standardError.write(Data("paddock: \(error); retrying the submission\n".utf8))
                try? await Task.sleep(for: .milliseconds(Int(pause * 1000)))
                pause = min(pause * 2, 5)
            }
        }
    }

    /// A job file is JSON, or YAML turned into the same JSON.
    static func jsonBody(_ data: Data, name: String) throws(JobFileError) -> Data {
        if (try? JSONSerialization.jsonObject(with: data)) != nil { return data }
        do {
            guard let object = try Yams.load(yaml: String(decoding: data, as: UTF8.self)),
                  JSONSerialization.isValidJSONObject(object) else {
                throw JobFileError("\(name) is neither a JSON nor a YAML mapping")
            }
            return try JSONSerialization.data(withJSONObject: object)
        } catch let error as JobFileError {
            throw error
        } catch let error as YamlError {
            // Yams says "LINE:COLUMN: error: ..." and shows the line: after the file's name, as a compiler would.
            throw JobFileError("\(name):\(error)")
        } catch {
            throw JobFileError("\(name): \(error)")
        }
    }

    /// What the master would answer for this job body, decoded and validated as it does; nil when
    /// it would take it.
    static func refusal(of body: Data) -> PaddockError? {
        do {
            _ = try WireJSON.decoder().decode(WrittenJob.self, from: body).validated()
            return nil
        } catch {
            return WireJSON.describe(error)
        }
    }

    /// A refusal of a field, with where that field stands in the file (YAML or JSON text that YAML
    /// reads too): `job.yaml:4:5: tasks[0]: unknown field 'comand' (did you mean 'command'?)`.
    static func locate(_ refusal: PaddockError, in text: Data, file: String) -> String? {
        guard refusal.status == 400, let field = refusal.field,
              let mark = JobFileLocation.mark(of: field, in: String(decoding: text, as: UTF8.self)) else { return nil }
        return "\(file == "-" ? "<stdin>" : file):\(mark.line):\(mark.column): \(refusal.message)"
    }

    /// The master's refusal of a field, located in the file.
    static func locate(_ error: ClientError, in text: Data, file: String) -> String? {
        guard case .api(let refusal) = error else { return nil }
        return locate(refusal, in: text, file: file)
    }
}

struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "jobs", abstract: "List jobs.")
    @Option(help: "Only jobs in this state.") var state: String?
    @Option(help: "Only jobs of this owner.") var owner: String?
    @Option(help: "At most this many.") var limit: Int = 50
    @OptionGroup var client: ClientOptions

    func run() async throws {
        var query = ["limit": String(limit)]
        query["state"] = state
        query["owner"] = owner
        try await client.show(APIPath.jobs, query: query, as: Page<JobView>.self) { page in
            table(["ID", "NAME", "OWNER", "PRI", "STATE", "DONE", "PROGRESS", "CREATED"], page.items.map { job in
                [job.id.description, job.name, job.owner, String(job.priority), job.state.rawValue,
                 "\(job.counts[.succeeded])/\(job.counts.total)", String(format: "%.0f%%", job.progress * 100),
                 ago(job.createdAt)]
            })
        }
    }
}

struct JobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "job", abstract: "Show one job.")
    @Argument(help: "Job id, e.g. j12.") var id: String
    @Flag(help: "Clear the job's blocklist: every agent may run its tasks again.") var clearBlocklist = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        guard let job = JobID(id) else { throw ValidationError("'\(id)' is not a job id (e.g. j12)") }
        if clearBlocklist {
            _ = try await cli {
                try await client.client().raw("PATCH", APIPath.job(job), body: try WireJSON.encoder().encode(
                    JobPatch(clearBlocklist: true)), contentType: "application/json")
            }
        }
        try await client.show(APIPath.job(job), as: JobView.self) { job in
            var lines = [
                "job \(job.id): \(job.name)",
                "  owner \(job.owner), priority \(job.priority), created \(ago(job.createdAt))",
                "  state \(job.state.rawValue), progress \(String(format: "%.0f%%", job.progress * 100))",
                "  tasks: " + TaskState.allCases.filter { job.counts[$0] > 0 }
                    .map { "\(job.counts[$0]) \($0.rawValue)" }.joined(separator: ", "),
            ]
            if let blocklist = job.blocklist, !blocklist.isEmpty {
                lines.append("  blocklisted agents: " + blocklist.map { "\($0.agent) (\($0.failures) failures)" }
                    .joined(separator: ", "))
            }
            lines += job.warnings.map { "  warning: \($0)" }
            return lines.joined(separator: "\n")
        }
    }
}

struct TasksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tasks", abstract: "List tasks.")
    @Option(help: "Only tasks of this job.") var job: String?
    @Option(help: "Only tasks in this state.") var state: String?
    @Option(help: "Only tasks on this agent.") var agent: String?
    @Option(help: "At most this many.") var limit: Int = 100
    @OptionGroup var client: ClientOptions

    func run() async throws {
        var query = ["limit": String(limit)]
        query["job"] = job
        query["state"] = state
        query["agent"] = agent
        try await client.show(APIPath.tasks, query: query, as: Page<TaskView>.self) { page in
            table(["ID", "JOB", "NAME", "STATE", "AGENT", "TRY", "EXIT", "PROGRESS", "STATUS", "NOTE"], page.items.map { task in
                [task.id.description, task.jobID.description, task.name, task.state.rawValue,
                 task.agent?.description ?? "-", "\(task.attempt)/\(task.maxAttempts)",
                 task.exitCode.map(String.init) ?? "-", String(format: "%.0f%%", task.progress * 100),
                 task.status ?? "-", task.fitsNoAgent == true ? "fits no agent" : (task.reason ?? "")]
            })
        }
    }
}

struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "Print a task's output.")
    @Argument(help: "Task id, e.g. t34.") var id: String
    @Option(help: "Which run: 1 is the task's first start, retried and released runs counted (default: the latest).") var attempt: Int?
    @Flag(name: [.short, .long], help: "Follow the output as it comes, until the run ends.") var follow = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        guard let task = TaskID(id) else { throw ValidationError("'\(id)' is not a task id (e.g. t34)") }
        var query: [String: String] = [:]
        query["attempt"] = attempt.map(String.init)
        if follow {
            try await cli { try await followLog(task, client: try client.client()) }
            return
        }
        let data = try await cli { try await client.client().raw("GET", APIPath.taskLogs(task), query: query) }
        FileHandle.standardOutput.write(data)
    }
}

extension LogsCommand {
    /// Follows one run to its end. The master ends a follow answer when the run has been silent for
    /// a while (a frontend would cut it); while the run is live, ask again from the bytes we have.
    func followLog(_ task: TaskID, client: MasterClient) async throws {
        // The run to follow, pinned the way the master picks it, so that asking again stays on it.
        let view: TaskView = try await client.call("GET", APIPath.task(task))
        let run = attempt ?? ([.queued, .assigned, .blocked].contains(view.state) ? view.runs + 1 : max(view.runs, 1))
        var received: Int64 = 0
        while true {
            let query = ["follow": "true", "attempt": String(run), "from": String(received)]
            for try await chunk in client.stream(APIPath.taskLogs(task), query: query) {
                FileHandle.standardOutput.write(chunk)
                received += Int64(chunk.count)
            }
            let now: TaskView = try await client.call("GET", APIPath.task(task))
            let live = now.state == .running && now.runs == run
                || [.queued, .assigned, .blocked].contains(now.state) && now.runs + 1 == run
            guard live else { return }
        }
    }
}

struct AgentsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "agents", abstract: "List agents.")
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.show(APIPath.agents, as: Page<AgentView>.self) { page in
            table(["ID", "NAME", "STATE", "ADDRESS", "CPUS FREE/TOTAL", "RAM FREE/TOTAL", "GPUS", "TAGS", "TASKS", "SEEN"],
                  page.items.map { agent in
                let r = agent.resources
                return [agent.id.description, agent.name, agent.state.rawValue, agent.address ?? "-",
                        "\(ResourceVector.formatCPUs(r.free.milliCPUs))/\(ResourceVector.formatCPUs(r.total.milliCPUs))",
                        "\(ByteSize.format(r.free.ram))/\(ByteSize.format(r.total.ram))",
                        "\(r.free.gpus)/\(r.total.gpus)", agent.tags.joined(separator: ","),
                        String(agent.runningTasks.count), ago(agent.lastSeen)]
            })
        }
    }
}
