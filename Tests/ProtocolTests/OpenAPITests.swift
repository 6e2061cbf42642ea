import Foundation
import PaddockProtocol
import Testing
import Yams

extension Node {
    /// The value of `key` in a mapping, whatever the key's resolved tag (`'200'` and `200` alike).
    func at(_ key: String) -> Node? { mapping?.first { $0.key.string == key }?.value }
}

/// `openapi.yaml` read with Yams: enough to compare the document with the route table and with
/// what the Codable types really encode and accept.
struct OpenAPIOutline {
    struct Operation {
        var method: String
        var path: String
        var node: Node
        var operationID: String? { node["operationId"]?.string }
        /// Status codes of `responses:`.
        var statuses: Set<String> { Set(node["responses"]?.mapping?.keys.compactMap(\.string) ?? []) }
        /// The operation's own `security` (nil: the document's default).
        var security: [Node]? { node["security"]?.sequence.map(Array.init) }
        var requestBody: Node? { node["requestBody"] }
        /// Names of the parameters written inline (not those by `$ref`).
        var parameterNames: Set<String> { Set(parameters.compactMap { $0["name"]?.string }) }
        var parameters: [Node] { node["parameters"]?.sequence.map(Array.init) ?? [] }
        func parameter(_ name: String) -> Node? { parameters.first { $0["name"]?.string == name } }
        /// Whether a key or a string anywhere in the operation contains `text`.
        func mentions(_ text: String) -> Bool { OpenAPIOutline.mentions(node, text) }
    }

    let root: Node

    init(_ yaml: String) {
        // The document is the product's own: a parse failure fails every test that reads it.
        root = (try? Yams.compose(yaml: yaml)) ?? Node.mapping(Node.Mapping([]))
    }

    /// Whether a key or a string anywhere below `node` contains `text`.
    static func mentions(_ node: Node, _ text: String) -> Bool {
        switch node {
        case .scalar(let scalar): scalar.string.contains(text)
        case .mapping(let mapping): mapping.contains { key, value in (key.string?.contains(text) ?? false) || mentions(value, text) }
        case .sequence(let sequence): sequence.contains { mentions($0, text) }
        case .alias: false
        }
    }

    /// The `info` section's title and description.
    var info: String { [root["info"]?["title"]?.string, root["info"]?["description"]?.string].compactMap { $0 }.joined(separator: " ") }

    /// Every (METHOD, path) of `paths:`.
    var operations: [Operation] {
        let methods = ["get", "post", "put", "patch", "delete"]
        var result: [Operation] = []
        for (pathKey, item) in root["paths"]?.mapping ?? [:] {
            guard let path = pathKey.string else { continue }
            for (methodKey, node) in item.mapping ?? [:] {
                guard let method = methodKey.string, methods.contains(method) else { continue }
                result.append(Operation(method: method.uppercased(), path: path, node: node))
            }
        }
        return result
    }

    /// One entry of `components.<group>`.
    func component(_ group: String, _ name: String) -> Node? { root["components"]?[group]?[name] }

    func componentNames(_ group: String) -> Set<String> {
        Set(root["components"]?[group]?.mapping?.keys.compactMap(\.string) ?? [])
    }

    /// The property names of a schema.
    func properties(_ schema: String) -> Set<String>? {
        component("schemas", schema)?["properties"]?.mapping.map { Set($0.keys.compactMap(\.string)) }
    }

    /// A list of a schema such as `required` or `enum`, in its order.
    func list(_ key: String, of schema: String) -> [String]? {
        component("schemas", schema)?[key]?.sequence.map { $0.compactMap(\.string) }
    }

    func refusesUnknownFields(_ schema: String) -> Bool {
        component("schemas", schema)?["additionalProperties"]?.bool == false
    }

    /// Every `$ref: '#/components/<group>/<name>'` in the document.
    var references: [(group: String, name: String)] {
        var found: [(group: String, name: String)] = []
        func walk(_ node: Node) {
            switch node {
            case .mapping(let mapping):
                for (key, value) in mapping {
                    if key.string == "$ref", let target = value.string, target.hasPrefix("#/components/") {
                        let parts = target.dropFirst("#/components/".count).split(separator: "/")
                        if parts.count == 2 { found.append((String(parts[0]), String(parts[1]))) }
                    } else {
                        walk(value)
                    }
                }
            case .sequence(let sequence): sequence.forEach(walk)
            default: break
            }
        }
        walk(root)
        return found
    }
}

@Suite("OpenAPI document")
struct OpenAPITests {
    let doc = OpenAPIOutline(OpenAPIDocument.yaml)

    func operation(_ route: APIRoute) throws -> OpenAPIOutline.Operation {
        try #require(doc.operations.first { $0.method == route.method.rawValue && $0.path == route.path },
                     "\(route.method.rawValue) \(route.path) is not in openapi.yaml")
    }

    @Test func isAnOpenAPI3Document() {
        #expect(OpenAPIDocument.yaml.hasPrefix("openapi: 3.0.3\n"))
        #expect(!doc.operations.isEmpty)
        #expect(!doc.componentNames("schemas").isEmpty)
    }

    @Test func listsExactlyTheRoutesOfTheTable() {
        struct Route: Hashable, CustomStringConvertible {
            let method: String, path: String
            var description: String { "\(method) \(path)" }
        }
        let documented = doc.operations.map { Route(method: $0.method, path: $0.path) }
        let served = APIRoute.allCases.map { Route(method: $0.method.rawValue, path: $0.path) }
        #expect(documented.count == Set(documented).count, "a route is documented twice")
        #expect(served.count == Set(served).count, "APIRoute has two cases with one method and path")
        #expect(Set(documented) == Set(served),
                "only documented: \(Set(documented).subtracting(served)); only served: \(Set(served).subtracting(documented))")
        #expect(documented.count == APIRoute.allCases.count)
    }

    @Test(arguments: APIRoute.allCases)
    func operationIDsAreTheRouteNames(_ route: APIRoute) throws {
        #expect(try operation(route).operationID == route.rawValue)
    }

    @Test(arguments: APIRoute.allCases)
    func statusCodesAndAuth(_ route: APIRoute) throws {
        let op = try operation(route)
        switch route {
        case .submitJob, .enrollAgent, .sendCommand, .reportException, .createToken:
            #expect(op.statuses.contains("201") && !op.statuses.contains("200"))
        case .progressTask, .deleteAgent:
            #expect(op.statuses.contains("204") && !op.statuses.contains("200"))
        default:
            #expect(op.statuses.contains("200"))
        }
        if Self.openRoutes.contains(route) {
            #expect(op.security?.isEmpty == true)
            #expect(!op.statuses.contains("401"))
        } else {
            #expect(op.security == nil, "an authenticated route must not override security")
            #expect(op.statuses.isSuperset(of: ["401", "403"]))
        }
        if route == .submitJob {
            #expect(op.statuses.contains("409"), "a job after a failed or cancelled one answers 409")
        }
        if [.startTask, .progressTask, .finishTask, .uploadTaskLogs].contains(route) {
            #expect(op.statuses.contains("409"), "stale epochs answer 409")
        }
        if Self.routesWithBodies.contains(route) {
            #expect(op.statuses.isSuperset(of: ["400", "413"]), "a route with a body refuses bad and oversized ones")
            #expect(op.requestBody != nil)
        } else if ![.uploadTaskLogs].contains(route) {
            #expect(op.requestBody == nil, "\(route) documents a body it does not read")
        }
        if Self.stateChangingRoutes.contains(route) {
            #expect(op.statuses.contains("409"), "a change the state does not allow answers 409")
            #expect(op.mentions("#/components/responses/StateConflict"))
        }
        if route.path.contains("{id}") {
            #expect(op.statuses.contains("404"))
        }
        if route == .healthz {
            #expect(op.statuses.contains("503"), "a master whose database does not answer is not healthy")
        }
        // Every route that reads the database answers 503 when it does not answer (StoreUnavailableTests).
        if [.openapi, .installAgentScript, .agentPackage].contains(route) {
            #expect(!op.statuses.contains("503"), "\(route) reads no database")
        } else {
            #expect(op.statuses.contains("503") && op.mentions("#/components/responses/Unavailable"), "\(route)")
        }
        // Every route is behind the rate limit (issue 16).
        #expect(op.statuses.contains("429") && op.mentions("#/components/responses/RateLimited"))
    }

    @Test func rateLimitedIsDocumentedWithRetryAfter() throws {
        let limited = try #require(doc.component("responses", "RateLimited"))
        #expect(limited["headers"]?["Retry-After"] != nil)
        #expect(OpenAPIOutline.mentions(limited, "#/components/schemas/Error"))
        #expect(OpenAPIOutline.mentions(limited, "rate_limited"))
        #expect(doc.info.contains("429"))
        #expect(PaddockError.rateLimited("x").status == 429 && PaddockError.rateLimited("x").code == "rate_limited")
    }

    @Test func unavailableIsDocumentedWithRetryAfter() throws {
        let unavailable = try #require(doc.component("responses", "Unavailable"))
        #expect(unavailable["headers"]?["Retry-After"] != nil)
        #expect(OpenAPIOutline.mentions(unavailable, "#/components/schemas/Error"))
        #expect(doc.info.contains("503"))
        #expect(PaddockError.storeUnavailable.status == 503 && PaddockError.storeUnavailable.code == "unavailable")
    }

    /// Routes that read a JSON body (and so answer 400 and 413).
    static let routesWithBodies: Set<APIRoute> = [
        .submitJob, .enrollAgent, .heartbeat, .claim, .exchange, .startTask, .progressTask, .finishTask, .uploadTaskLogs,
        .patchJob, .pauseJob, .patchTasks, .patchAgent, .sendCommand, .reportException, .createToken, .resetAgent,
    ]

    /// Routes that need no token (the master's AuthMiddleware lets exactly these paths through).
    static let openRoutes: Set<APIRoute> = [.healthz, .openapi, .prometheus, .installAgentScript, .agentPackage]

    @Test func theDescriptionNamesTheOpenRoutes() {
        let intro = doc.info
        for route in Self.openRoutes { #expect(intro.contains("`GET \(route.path)`"), "\(route)") }
    }

    /// Control routes that refuse what the current state does not allow (409, nothing changed).
    static let stateChangingRoutes: Set<APIRoute> = [
        .cancelJob, .pauseJob, .resumeJob, .retryJob, .patchTasks, .cancelTask, .retryTask, .sendCommand,
    ]

    @Test func pauseBodyIsOptional() throws {
        let pause = try operation(.pauseJob)
        #expect(pause.requestBody?["required"]?.bool == false)
        #expect(pause.parameterNames.contains("kill"))
        for route in Self.routesWithBodies.subtracting([.pauseJob, .uploadTaskLogs]) {
            #expect(try operation(route).requestBody?["required"]?.bool == true, "\(route)")
        }
    }

    @Test func logsAreTextOutAndBytesIn() throws {
        let read = try operation(.getTaskLogs)
        #expect(read.node["responses"]?.at("200")?["content"]?["text/plain"] != nil)
        #expect(read.parameterNames.contains("attempt"))
        let upload = try operation(.uploadTaskLogs)
        #expect(upload.requestBody?["content"]?["application/octet-stream"] != nil)
        #expect(upload.parameterNames.isSuperset(of: ["epoch", "offset"]))
        #expect(try operation(.openapi).node["responses"]?.at("200")?["content"]?["application/yaml"] != nil)
        #expect(try operation(.prometheus).node["responses"]?.at("200")?["content"]?["text/plain; version=0.0.4"] != nil)
        #expect(try operation(.prometheus).mentions("paddock_http_request_duration_seconds"))
    }

    @Test func listFiltersAreDocumented() throws {
        let tasks = try operation(.listTasks)
        #expect(tasks.parameterNames.isSuperset(of: ["job", "state", "agent"]))
        #expect(tasks.mentions("#/components/parameters/Limit") && tasks.mentions("#/components/parameters/Cursor"))
        let jobs = try operation(.listJobs)
        #expect(jobs.parameterNames.isSuperset(of: ["state", "owner", "label"]))
        let commands = try operation(.listCommands)
        #expect(commands.parameterNames.isSuperset(of: ["after", "wait"]))
        #expect(commands.parameter("wait")?["schema"]?["maximum"]?.int == Int(Limits.longPollSeconds))
        let exceptions = try operation(.listExceptions)
        #expect(exceptions.mentions("#/components/parameters/Limit") && exceptions.mentions("#/components/parameters/Cursor"))
        let metrics = try operation(.agentMetrics)
        #expect(metrics.parameterNames.contains("since") && metrics.mentions("#/components/schemas/MetricsPage"))
        #expect(try operation(.masterInfo).mentions("#/components/schemas/MasterInfo"))
        #expect(try operation(.reportException).mentions("#/components/schemas/ExceptionReport"))
    }

    @Test func everyReferenceResolves() {
        let refs = doc.references
        #expect(refs.count > 50)
        for ref in refs {
            #expect(doc.componentNames(ref.group).contains(ref.name), "dangling $ref \(ref.group)/\(ref.name)")
        }
    }

    @Test func enumsMatchTheSwiftTypes() throws {
        #expect(doc.list("enum", of: "TaskState") == TaskState.allCases.map(\.rawValue))
        #expect(doc.list("enum", of: "JobState") == JobState.allCases.map(\.rawValue))
        #expect(doc.list("enum", of: "AgentState") == AgentState.allCases.map(\.rawValue))
        #expect(doc.list("enum", of: "TaskTransition") == TaskTransition.allCases.map(\.rawValue))
        let outcomes: [TaskOutcome] = [.succeeded, .failed, .released]
        #expect(doc.list("enum", of: "TaskOutcome") == outcomes.map(\.rawValue))
        #expect(doc.list("required", of: "TaskCounts") == TaskState.allCases.map(\.rawValue))
        #expect(doc.list("required", of: "AgentCounts") == AgentState.allCases.map(\.rawValue))
        #expect(doc.list("enum", of: "CommandKind") == CommandKind.allCases.map(\.rawValue))
        // TaskBulkPatch.StateChange is not CaseIterable: every documented value decodes, and no other state does.
        let changes = try #require(doc.list("enum", of: "TaskStateChange"))
        #expect(changes.compactMap(TaskBulkPatch.StateChange.init(rawValue:)).count == changes.count)
        #expect(Set(TaskState.allCases.compactMap { TaskBulkPatch.StateChange(rawValue: $0.rawValue) }.map(\.rawValue))
                == Set(changes))
    }

    // MARK: schemas against what the types encode

    static func keys<T: Encodable>(_ value: T) throws -> Set<String> { Set(try Wire.object(value).keys) }

    func expectSchema(_ schema: String, describes keys: Set<String>, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(doc.properties(schema) == keys, "\(schema)", sourceLocation: sourceLocation)
        if let required = doc.list("required", of: schema) {
            #expect(Set(required).isSubset(of: keys), "\(schema) requires what is never sent", sourceLocation: sourceLocation)
        }
    }

    @Test func responseSchemasMatchWhatIsEncoded() throws {
        expectSchema("Job", describes: try Self.keys(Samples.job()))
        #expect(Set(try #require(doc.list("required", of: "Job")))
                == (try Self.keys(Samples.job(taskIDs: nil, blocklist: nil))))
        expectSchema("JobCreated", describes: try Self.keys(JobCreated(Samples.job())))
        #expect(Set(try #require(doc.list("required", of: "JobCreated")))
                == (try Self.keys(JobCreated(Samples.job(taskIDs: nil, blocklist: nil)))))
        expectSchema("BlocklistEntry", describes: try Self.keys(BlocklistEntry(agent: AgentID(rawValue: 3), failures: 3)))
        expectSchema("Task", describes: try Self.keys(Samples.task(full: true)))
        // What a bare task always carries is exactly what the schema requires.
        #expect(Set(try #require(doc.list("required", of: "Task"))) == (try Self.keys(Samples.task(full: false))))
        expectSchema("TaskEvent", describes: try Self.keys(Samples.event))
        expectSchema("Agent", describes: try Self.keys(Samples.fullAgent))
        #expect(Set(try #require(doc.list("required", of: "Agent"))) == (try Self.keys(Samples.agent)))
        expectSchema("AgentResources", describes: try Self.keys(Samples.agent.resources))
        expectSchema("Resources", describes: try Self.keys(ResourceVector(cpus: 1)))
        expectSchema("Requirements", describes: try Self.keys(TaskRequirements.default))
        expectSchema("TaskCounts", describes: try Self.keys(TaskCounts([:])))
        expectSchema("TaskLease", describes: try Self.keys(Samples.lease))
        #expect(Set(try #require(doc.list("required", of: "TaskLease")))
                == (try Self.keys(Samples.lease)).subtracting(["cwd", "timeout", "progress_regex", "frames"]))
        expectSchema("ClaimResponse", describes: try Self.keys(ClaimResponse(leases: [])))
        let task = TaskID(rawValue: 1)
        expectSchema("ExchangeResponse", describes: try Self.keys(ExchangeResponse(talkback: CommandBatch(commands: [], last: 0))))
        #expect(Set(try #require(doc.list("required", of: "ExchangeResponse"))) == (try Self.keys(ExchangeResponse())))
        let refusal = ExchangeRefusal(task: task, epoch: LeaseEpoch(1), kind: .finish,
                                      error: .staleEpoch(task: task, sent: LeaseEpoch(1), current: LeaseEpoch(2)))
        expectSchema("ExchangeRefusal", describes: try Self.keys(refusal))
        expectSchema("ExchangeLogAck", describes: try Self.keys(ExchangeLogAck(task: task, epoch: LeaseEpoch(1), size: 3, capped: true)))
        #expect(try Self.keys(ExchangeLogAck(task: task, epoch: LeaseEpoch(1), size: 3)) == ["task", "epoch", "size"])
        expectSchema("EnrollResponse", describes: try Self.keys(
            EnrollResponse(id: AgentID(rawValue: 1), credential: "pa_x", leaseTimeout: 30, heartbeatInterval: 5)))
        expectSchema("HeartbeatResponse", describes: try Self.keys(
            HeartbeatResponse(state: .online, lost: [], leaseTimeout: 30, heartbeatInterval: 5)))
        expectSchema("HeldLease", describes: try Self.keys(HeldLease(task: TaskID(rawValue: 1), epoch: LeaseEpoch(1))))
        expectSchema("LogAck", describes: try Self.keys(LogAck(size: 10)))
        expectSchema("Error", describes: try Self.keys(PaddockError.invalid("x", field: "f")))
        #expect(Set(try #require(doc.list("required", of: "Error"))) == (try Self.keys(PaddockError.unauthorized)))
        for page in ["JobPage", "TaskPage", "AgentPage"] {
            expectSchema(page, describes: try Self.keys(Page<JobView>(items: [], next: nil)))
        }
        expectSchema("BulkResult", describes: try Self.keys(BulkResult(updated: 3)))
        expectSchema("AgentCommand", describes: try Self.keys(Samples.command(full: true)))
        #expect(Set(try #require(doc.list("required", of: "AgentCommand"))) == (try Self.keys(Samples.command(full: false))))
        expectSchema("CommandBatch", describes: try Self.keys(CommandBatch(commands: [], last: 0)))
        expectSchema("CommandAccepted", describes: try Self.keys(CommandAccepted(seq: 1)))
        // observability
        let metrics = Samples.hostMetrics
        expectSchema("HostMetrics", describes: try Self.keys(metrics))
        expectSchema("HostCPU", describes: try Self.keys(metrics.cpu))
        expectSchema("HostLoad", describes: try Self.keys(metrics.load))
        expectSchema("HostMemory", describes: try Self.keys(metrics.memory))
        expectSchema("HostDisk", describes: try Self.keys(metrics.disk))
        expectSchema("GPU", describes: try Self.keys(Samples.gpu))
        expectSchema("TaskUsage", describes: try Self.keys(Samples.usage))
        expectSchema("Exception", describes: try Self.keys(Samples.exception))
        var bare = Samples.exception
        bare.task = nil
        #expect(Set(try #require(doc.list("required", of: "Exception"))) == (try Self.keys(bare)))
        for page in ["ExceptionPage", "MetricsPage"] {
            expectSchema(page, describes: try Self.keys(Page<HostMetrics>(items: [], next: nil)))
        }
        expectSchema("MasterInfo", describes: try Self.keys(Samples.masterInfo))
        #expect(Set(try #require(doc.list("required", of: "MasterInfo"))) == (try Self.keys(Samples.masterInfo)))
        expectSchema("Percentiles", describes: try Self.keys(Samples.masterInfo.requestMilliseconds))
        expectSchema("AgentCounts", describes: Set(Samples.masterInfo.agents.keys))
    }

    static let requestSchemas = ["JobWithTasks", "JobFromFrames", "TaskSpec", "RequirementsInput", "ResourcesInput",
                                 "EnrollRequest", "HeartbeatRequest", "HeldLease", "ClaimRequest", "TaskReport",
                                 "ProgressReport", "FinishReport", "JobPatch", "PauseRequest", "TaskBulkPatch",
                                 "AgentPatch", "CommandRequest", "ExceptionReport", "HostMetrics", "HostCPU",
                                 "ExchangeRequest", "ExchangeLog", "ExchangeProgress", "ExchangeFinish",
                                 "TalkbackPoll", "HostLoad", "HostMemory", "HostDisk", "GPU", "TaskUsage", "TokenRequest",
                                 "AgentResetRequest"]

    @Test(arguments: requestSchemas)
    func requestSchemasRefuseUnknownFields(_ schema: String) {
        let refuses = doc.refusesUnknownFields(schema)
        #expect(refuses, "\(schema) lacks additionalProperties: false")
    }

    @Test func requestSchemasMatchWhatIsEncoded() throws {
        var spec = TaskSpec(name: "t", command: ["x"], env: ["A": "b"], cwd: "/tmp", requirements: .default,
                            maxAttempts: 2, timeout: 5, priority: 1, dependsOn: ["u"])
        spec.frames = 1...10
        spec.parameters = ["Frame": "7"]
        // `path_mapping` and `attributes` are read only: they become the task's env and tags.
        expectSchema("TaskSpec", describes: try Self.keys(spec).union(["path_mapping"]))
        var job = JobSubmission(
            name: "j", owner: "ana", priority: 1, labels: ["a": "b"], requirements: .default, maxAttempts: 2, timeout: 5,
            tasks: [spec, TaskSpec(name: "u", command: ["y"])])
        job.after = [JobID(rawValue: 1)]
        job.progressRegex = #"Fra:(\d+)"#
        expectSchema("JobWithTasks", describes: try Self.keys(job))
        expectSchema("RequirementsInput", describes: try Self.keys(TaskRequirements.default).union(["attributes"]))
        expectSchema("ResourcesInput", describes: try Self.keys(ResourceVector(cpus: 1)))
        expectSchema("EnrollRequest", describes: try Self.keys(
            EnrollRequest(name: "a", resources: ResourceVector(cpus: 1), tags: [], version: "1", credential: "pa_1")))
        expectSchema("TokenRequest", describes: try Self.keys(TokenRequest(name: "a", role: .join, ttl: 60, uses: 2)))
        expectSchema("AgentResetRequest", describes: try Self.keys(AgentResetRequest(name: "a")))
        let usage = TaskUsageReport(task: TaskID(rawValue: 1), epoch: LeaseEpoch(1), usage: Samples.usage)
        expectSchema("HeartbeatRequest", describes: try Self.keys(
            HeartbeatRequest(held: [], authoritative: true, leaving: true, metrics: Samples.hostMetrics, usage: [usage],
                             answered: ExchangeNumber(incarnation: 9, sequence: 4))))
        expectSchema("TaskUsageReport", describes: try Self.keys(usage))
        expectSchema("ExceptionReport", describes: try Self.keys(
            ExceptionReport(type: "t", message: "m", context: ["a": "b"], task: TaskID(rawValue: 1), at: Samples.date)))
        expectSchema("ClaimRequest", describes: try Self.keys(ClaimRequest(slots: 1, wait: 0, free: .zero, prefetch: 2,
                                                                          capacity: 4)))
        let task = TaskID(rawValue: 1)
        let exchange = ExchangeRequest(
            started: [HeldLease(task: task, epoch: LeaseEpoch(1))],
            logs: [ExchangeLog(task: task, epoch: LeaseEpoch(1), offset: 0, data: Data("hi".utf8))],
            progress: [ExchangeProgress(task: task, epoch: LeaseEpoch(1), progress: 0.5, status: "Loading")],
            finished: [ExchangeFinish(task: task, report: FinishReport(epoch: LeaseEpoch(1), outcome: .succeeded, exitCode: 0))],
            claim: ClaimRequest(slots: 1, wait: 0), talkback: TalkbackPoll(after: 3, wait: 50),
            number: ExchangeNumber(incarnation: 9, sequence: 5))
        expectSchema("ExchangeRequest", describes: try Self.keys(exchange))
        expectSchema("ExchangeNumber", describes: try Self.keys(exchange.number))
        expectSchema("TalkbackPoll", describes: try Self.keys(exchange.talkback))
        expectSchema("ExchangeLog", describes: try Self.keys(exchange.logs[0]))
        expectSchema("ExchangeProgress", describes: try Self.keys(exchange.progress[0]))
        expectSchema("ExchangeFinish", describes: try Self.keys(exchange.finished[0]))
        expectSchema("TaskReport", describes: try Self.keys(TaskReport(epoch: LeaseEpoch(1), progress: 0.5)))
        expectSchema("ProgressReport", describes: try Self.keys(TaskReport(epoch: LeaseEpoch(1), progress: 0.5)))
        expectSchema("FinishReport", describes: try Self.keys(
            FinishReport(epoch: LeaseEpoch(1), outcome: .failed, exitCode: 1, reason: "r", usage: Samples.usage)))
        expectSchema("JobPatch", describes: try Self.keys(JobPatch(priority: 1, labels: ["a": "b"], clearBlocklist: true)))
        expectSchema("PauseRequest", describes: try Self.keys(PauseRequest(kill: true)))
        expectSchema("TaskBulkPatch", describes: try Self.keys(
            TaskBulkPatch(ids: [TaskID(rawValue: 1)], priority: 1, state: .cancelled)))
        expectSchema("AgentPatch", describes: try Self.keys(
            AgentPatch(drain: true, disabled: false, tags: ["gpu"], resources: ResourceVector(cpus: 1))))
        expectSchema("CommandRequest", describes: try Self.keys(
            CommandRequest(kind: .update, task: TaskID(rawValue: 1), tags: ["gpu"], resources: ResourceVector(cpus: 1),
                           ttl: 60)))
    }

    /// The patches that must change something say so (`minProperties`, `anyOf`), as their decoders do.
    @Test func emptyPatchesAreRefusedByDocumentAndDecoder() throws {
        for schema in ["JobPatch", "AgentPatch"] {
            #expect(doc.component("schemas", schema)?["minProperties"]?.int == 1, "\(schema)")
        }
        #expect(Wire.rejection(JobPatch.self, "{}")?.status == 400)
        #expect(Wire.rejection(AgentPatch.self, "{}")?.status == 400)
        let bulk = try #require(doc.component("schemas", "TaskBulkPatch"))
        let alternatives = (bulk["anyOf"]?.sequence.map(Array.init) ?? []).map { $0["required"]?.sequence?.compactMap(\.string) ?? [] }
        #expect(alternatives == [["priority"], ["state"]])
        #expect(doc.list("required", of: "TaskBulkPatch") == ["ids"])
        #expect(Wire.rejection(TaskBulkPatch.self, #"{"ids": ["t1"]}"#)?.status == 400)
        #expect(Wire.rejection(TaskBulkPatch.self, #"{"ids": [], "priority": 1}"#)?.status == 400)
        #expect(doc.list("required", of: "CommandRequest") == ["kind"])
        #expect(Wire.rejection(CommandRequest.self, #"{"kind": "cancel"}"#)?.status == 400)
        #expect(Wire.rejection(CommandRequest.self, #"{"kind": "update"}"#)?.status == 400)
        #expect(Wire.rejection(CommandRequest.self, #"{"kind": "ping", "ttl": 0}"#)?.status == 400)
        // PauseRequest has no required field: an empty object is a plain pause.
        #expect(doc.list("required", of: "PauseRequest") == nil)
        #expect(try Wire.decode(PauseRequest.self, "{}").kill == false)
    }

    /// Bodies that use every property the schemas declare are accepted by the real decoders.
    @Test func everyDocumentedPropertyIsAccepted() throws {
        let frames = try #require(doc.properties("JobFromFrames"))
        let withTasks = try #require(doc.properties("JobWithTasks"))
        #expect(frames.subtracting(withTasks) == ["frames", "chunk", "command", "env", "cwd"])
        #expect(withTasks.subtracting(frames) == ["tasks"])
        let job = try Wire.decode(JobSubmission.self, #"""
            {"name": "j", "owner": "ana", "priority": 1, "labels": {"a": "b"},
             "requirements": {"cpus": 1, "ram": "1GiB", "disk": 0, "gpus": 0, "tags": ["t"]},
             "timeout": "1h", "max_attempts": 2, "after": ["j1", "2"],
             "frames": "1-4", "chunk": 2, "command": ["x", "{start}"], "env": {"E": "{end}"}, "cwd": "/tmp"}
            """#)
        #expect(job.tasks.count == 2)
        #expect(job.after == [JobID(rawValue: 1), JobID(rawValue: 2)])
        let listed = try Wire.decode(JobSubmission.self, #"""
            {"name": "j", "after": ["j3"], "tasks": [
              {"name": "a", "command": ["x"]}, {"name": "b", "command": ["y"], "depends_on": ["a"]}]}
            """#)
        #expect(listed.tasks[1].dependsOn == ["a"] && listed.after == [JobID(rawValue: 3)])
        #expect(try Wire.decode(EnrollRequest.self,
            #"{"name": "a", "resources": {"cpus": 1, "ram": 0, "disk": "1G", "gpus": 0}, "tags": [], "version": "1"}"#)
            .name == "a")
        let claim = try Wire.decode(ClaimRequest.self, #"{"slots": 2, "wait": 1.5, "free": {"cpus": 1}, "prefetch": 4}"#)
        #expect(claim.slots == 2 && claim.prefetch == 4)

        #expect(try #require(doc.properties("JobPatch")) == ["priority", "labels", "clear_blocklist"])
        let patch = try Wire.decode(JobPatch.self,
            #"{"priority": 5, "labels": {"shot": "sh010"}, "clear_blocklist": true}"#)
        #expect(patch.priority == 5 && patch.labels == ["shot": "sh010"] && patch.clearBlocklist == true)
        #expect(try Wire.decode(JobPatch.self, #"{"clear_blocklist": true}"#).priority == nil)
        #expect(try Wire.decode(PauseRequest.self, #"{"kill": true}"#).kill)
        #expect(try #require(doc.properties("TaskBulkPatch")) == ["ids", "priority", "state"])
        let bulk = try Wire.decode(TaskBulkPatch.self, #"{"ids": ["t1", "2"], "priority": -3, "state": "queued"}"#)
        #expect(bulk.ids == [TaskID(rawValue: 1), TaskID(rawValue: 2)] && bulk.priority == -3 && bulk.state == .queued)
        #expect(try #require(doc.properties("AgentPatch")) == ["drain", "disabled", "tags", "resources"])
        let agent = try Wire.decode(AgentPatch.self,
            #"{"drain": true, "disabled": false, "tags": ["gpu", "linux"], "resources": {"cpus": 8, "ram": "32GiB"}}"#)
        #expect(agent.drain == true && agent.disabled == false && agent.tags == ["gpu", "linux"])
        #expect(agent.resources?.ram == 32 * GiB)
        #expect(try #require(doc.properties("CommandRequest")) == ["kind", "task", "tags", "resources", "ttl"])
        let command = try Wire.decode(CommandRequest.self,
            #"{"kind": "update", "task": "t7", "tags": ["a"], "resources": {"gpus": 1}, "ttl": 3600}"#)
        #expect(command.kind == .update && command.task == TaskID(rawValue: 7) && command.ttl == 3600)
        for kind in try #require(doc.list("enum", of: "CommandKind")) where !["cancel", "drop", "give_back", "update"].contains(kind) {
            #expect(try Wire.decode(CommandRequest.self, #"{"kind": "\#(kind)"}"#).kind.rawValue == kind)
        }
    }

    // MARK: observability bodies

    static let hostSample = #"""
        {"at": "2025-06-15T15:06:40Z",
         "cpu": {"busy_percent": 37.5, "per_core": [50, 25], "cores": 2},
         "load": {"one": 1.5, "five": 1, "fifteen": 0.5},
         "memory": {"total": 8589934592, "used": 3221225472, "available": 5368709120, "swap_total": 0, "swap_used": 0},
         "disk": {"path": "/var/lib/paddock", "total": 107374182400, "free": 42949672960},
         "gpus": [{"index": 0, "name": "NVIDIA A100", "utilization_percent": 12, "memory_total": 42949672960,
                   "memory_used": null}]}
        """#

    static let usageSample = #"{"cpu_seconds": 12.5, "rss": 1048576, "peak_rss": 2097152, "processes": 3}"#

    /// Bodies that use every property the observability schemas declare are accepted by the real decoders.
    @Test func everyDocumentedObservabilityPropertyIsAccepted() throws {
        let metrics = try Wire.decode(HostMetrics.self, Self.hostSample)
        #expect(metrics.gpus.count == 1 && metrics.gpus[0].memoryUsed == nil && metrics.cpu.perCore == [50, 25])
        #expect(try #require(doc.properties("HeartbeatRequest")) == ["held", "authoritative", "leaving", "metrics", "usage",
                                                                    "answered"])
        let beat = try Wire.decode(HeartbeatRequest.self, #"""
            {"held": [{"task": "t1", "epoch": 2}], "metrics": \#(Self.hostSample),
             "usage": [{"task": "t1", "epoch": 2, "usage": \#(Self.usageSample)}]}
            """#)
        #expect(beat.metrics == metrics)
        #expect(beat.usage == [TaskUsageReport(task: TaskID(rawValue: 1), epoch: LeaseEpoch(2),
                                               usage: TaskUsage(cpuSeconds: 12.5, rss: MiB, peakRSS: 2 * MiB, processes: 3))])
        let finish = try Wire.decode(FinishReport.self, #"{"epoch": 2, "outcome": "succeeded", "exit_code": 0, "usage": \#(Self.usageSample)}"#)
        #expect(finish.usage?.peakRSS == 2 * MiB)
        #expect(try #require(doc.properties("ExceptionReport")) == ["type", "message", "context", "task", "at"])
        let report = try Wire.decode(ExceptionReport.self, #"""
            {"type": "launch_failed", "message": "no such file", "context": {"path": "/bin/x"}, "task": "34",
             "at": "2025-06-15T15:06:40Z"}
            """#)
        #expect(report.task == TaskID(rawValue: 34) && report.context == ["path": "/bin/x"] && report.at == Samples.date)
        #expect(try Wire.decode(ExceptionReport.self, #"{"type": "x", "message": ""}"#).context.isEmpty)
    }

    /// For each strict observability schema: leaving out a field the document requires is refused by the
    /// decoder, leaving out any other is accepted, and an unknown field is refused.
    @Test(arguments: [
        ("HostMetrics", hostSample), ("TaskUsage", usageSample),
        ("ExceptionReport", #"{"type": "t", "message": "m", "context": {"a": "b"}, "task": "t1", "at": "2025-06-15T15:06:40Z"}"#),
        ("GPU", #"{"index": 0, "name": "g", "utilization_percent": 1, "memory_total": 2, "memory_used": 1}"#),
        ("HostCPU", #"{"busy_percent": 1, "per_core": [1], "cores": 1}"#),
        ("HostLoad", #"{"one": 1, "five": 1, "fifteen": 1}"#),
        ("HostMemory", #"{"total": 4, "used": 1, "available": 3, "swap_total": 0, "swap_used": 0}"#),
        ("HostDisk", #"{"path": "/w", "total": 4, "free": 1}"#),
    ])
    func requiredFieldsAreWhatTheDecoderNeeds(_ schema: String, _ body: String) throws {
        let decode: (Data) throws -> Void = switch schema {
        case "HostMetrics": { _ = try WireJSON.decoder().decode(HostMetrics.self, from: $0) }
        case "TaskUsage": { _ = try WireJSON.decoder().decode(TaskUsage.self, from: $0) }
        case "ExceptionReport": { _ = try WireJSON.decoder().decode(ExceptionReport.self, from: $0) }
        case "GPU": { _ = try WireJSON.decoder().decode(HostMetrics.GPU.self, from: $0) }
        case "HostCPU": { _ = try WireJSON.decoder().decode(HostMetrics.CPU.self, from: $0) }
        case "HostLoad": { _ = try WireJSON.decoder().decode(HostMetrics.Load.self, from: $0) }
        case "HostMemory": { _ = try WireJSON.decoder().decode(HostMetrics.Memory.self, from: $0) }
        default: { _ = try WireJSON.decoder().decode(HostMetrics.Disk.self, from: $0) }
        }
        let full = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        let properties = try #require(doc.properties(schema))
        #expect(Set(full.keys) == properties, "the sample body of \(schema) uses every documented property")
        let required = Set(doc.list("required", of: schema) ?? [])
        try decode(try JSONSerialization.data(withJSONObject: full))
        for key in properties {
            var body = full
            body[key] = nil
            let data = try JSONSerialization.data(withJSONObject: body)
            if required.contains(key) {
                #expect(throws: (any Error).self, "\(schema) without \(key)") { try decode(data) }
            } else {
                #expect(throws: Never.self, "\(schema) without \(key)") { try decode(data) }
            }
        }
        var extra = full
        extra["surprise"] = 1
        let data = try JSONSerialization.data(withJSONObject: extra)
        #expect(throws: (any Error).self, "\(schema) with an unknown field") { try decode(data) }
    }

    /// Host samples and usage ride on heartbeats and finishes best effort: the document says so, and the
    /// decoders drop a value they cannot read instead of refusing the whole body.
    @Test func lenientFieldsAreDocumentedAndDropped() throws {
        for (schema, field) in [("HeartbeatRequest", "metrics"), ("HeartbeatRequest", "usage"), ("FinishReport", "usage")] {
            let property = try #require(doc.component("schemas", schema)?["properties"]?[field])
            #expect(property["description"]?.string?.contains("Lenient") == true, "\(schema).\(field)")
        }
        #expect(try operation(.heartbeat).mentions("leniently"))
        #expect(try operation(.finishTask).mentions("leniently"))
        let bad = #"{"held": [{"task": "t1", "epoch": 1}], "metrics": {"at": "x"}, "usage": [{"task": "t1"}]}"#
        let beat = try Wire.decode(HeartbeatRequest.self, bad)
        #expect(beat.metrics == nil && beat.usage.isEmpty && beat.held.count == 1)
        let negative = #"{"metrics": \#(Self.hostSample.replacingOccurrences(of: "\"cores\": 2", with: "\"cores\": -2"))}"#
        #expect(try Wire.decode(HeartbeatRequest.self, negative).metrics == nil)
        let finish = try Wire.decode(FinishReport.self, #"{"epoch": 1, "outcome": "failed", "usage": {"rss": -1}}"#)
        #expect(finish.usage == nil && finish.outcome == .failed)
        // Strict fields of the same bodies are still refused.
        #expect(Wire.rejection(HeartbeatRequest.self, #"{"metrics": {}, "leaving": "yes"}"#)?.field == "leaving")
    }
}

/// The document's patterns for ids and durations accept what the master accepts (the fuzzing suite,
/// Tests/fuzz, generates from them: a value they allow and the master refuses was a 400 to valid data).
@Suite("OpenAPI patterns")
struct OpenAPIPatternTests {
    let doc = OpenAPIOutline(OpenAPIDocument.yaml)

    func matches(_ pattern: String, _ text: String) throws -> Bool {
        let regex = try NSRegularExpression(pattern: pattern)
        return regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    @Test func idInputsAreThePositiveIDsTheMasterReads() throws {
        let cases: [(String, String, (String) -> Bool)] = [
            ("JobIDInput", "j", { JobID($0) != nil }),
            ("TaskIDInput", "t", { TaskID($0) != nil }),
            ("AgentIDInput", "a", { AgentID($0) != nil }),
        ]
        for (schema, prefix, reads) in cases {
            let pattern = try #require(doc.component("schemas", schema)?["pattern"]?.string)
            for good in ["1", "12", "\(prefix)1", "\(prefix)345", "\(prefix)" + String(repeating: "9", count: 18)] {
                #expect(try matches(pattern, good) && reads(good), "\(schema) \(good)")
            }
            for bad in ["0", "\(prefix)0", "", prefix, "-1", "\(prefix)" + String(repeating: "9", count: 19), "x1"] {
                #expect(try !matches(pattern, bad), "\(schema) allows \(bad)")
                #expect(!reads(bad), "\(schema): the master reads \(bad)")
            }
        }
    }

    @Test func durationsArePositive() throws {
        let pattern = try #require(doc.component("schemas", "Duration")?["oneOf"]?.sequence.map(Array.init)?.last?["pattern"]?.string)
        for good in ["90", "1.", ".5", "0.5", "30s", "500ms", "5m", "5min", "2h", "1d", " 2h "] {
            #expect(try matches(pattern, good), "Duration refuses \(good)")
            #expect((DurationText.parse(good) ?? 0) > 0, "the master refuses \(good)")
        }
        for bad in ["0", "0s", "0.0", "00", ".", "", "1.2.3", "-1", "5 parsecs"] {
            #expect(try !matches(pattern, bad), "Duration allows \(bad)")
            #expect((DurationText.parse(bad) ?? 0) <= 0, "the master reads \(bad) as positive")
        }
    }
}
