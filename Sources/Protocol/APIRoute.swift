/// Every route of API v1, in one table: the master registers exactly these
/// (an exhaustive switch), and a test checks the OpenAPI document lists exactly these.
public enum APIRoute: String, CaseIterable, Sendable {
    case submitJob, listJobs, getJob
    case listTasks, getTask
    case getTaskLogs, uploadTaskLogs
    case startTask, progressTask, finishTask
    case enrollAgent, listAgents, getAgent
    case heartbeat, claim, exchange
    case healthz, openapi
    // control (talkback issue)
    case patchJob, deleteJob, cancelJob, pauseJob, resumeJob, retryJob
    case patchTasks, cancelTask, retryTask
    case patchAgent, deleteAgent, listCommands, sendCommand
    // observability (metrics issue)
    case reportException, listExceptions, masterInfo, prometheus, agentMetrics
    // installing agents (packaging issue)
    case installAgentScript, agentPackage
    // the web dashboard (issue 17)
    case jobGraph, throughput, changes
    // named tokens and enrollment (issue 16)
    case createToken, listTokens, revokeToken, whoami, resetAgent

    public enum Method: String, Sendable { case get = "GET", post = "POST", put = "PUT", patch = "PATCH", delete = "DELETE" }

    public var method: Method {
        switch self {
        case .submitJob, .uploadTaskLogs, .startTask, .progressTask, .finishTask, .enrollAgent, .claim, .exchange: .post
        case .cancelJob, .pauseJob, .resumeJob, .retryJob, .cancelTask, .retryTask, .sendCommand: .post
        case .heartbeat: .put
        case .patchJob, .patchTasks, .patchAgent: .patch
        case .deleteJob, .deleteAgent: .delete
        case .listJobs, .getJob, .listTasks, .getTask, .getTaskLogs, .listAgents, .getAgent, .healthz, .openapi: .get
        case .listCommands: .get
        case .reportException: .post
        case .listExceptions, .masterInfo, .prometheus, .agentMetrics: .get
        case .installAgentScript, .agentPackage: .get
        case .jobGraph, .throughput, .changes: .get
        case .createToken, .resetAgent: .post
        case .listTokens, .whoami: .get
        case .revokeToken: .delete
        }
    }

    /// The path in OpenAPI's `{param}` form.
    public var path: String {
        switch self {
        case .submitJob, .listJobs: "/v1/jobs"
        case .getJob: "/v1/jobs/{id}"
        case .listTasks: "/v1/tasks"
        case .getTask: "/v1/tasks/{id}"
        case .getTaskLogs, .uploadTaskLogs: "/v1/tasks/{id}/logs"
        case .startTask: "/v1/tasks/{id}/start"
        case .progressTask: "/v1/tasks/{id}/progress"
        case .finishTask: "/v1/tasks/{id}/finish"
        case .enrollAgent, .listAgents: "/v1/agents"
        case .getAgent: "/v1/agents/{id}"
        case .heartbeat: "/v1/agents/{id}/heartbeat"
        case .claim: "/v1/agents/{id}/claim"
        case .exchange: "/v1/agents/{id}/exchange"
        case .patchJob, .deleteJob: "/v1/jobs/{id}"
        case .cancelJob: "/v1/jobs/{id}/cancel"
        case .pauseJob: "/v1/jobs/{id}/pause"
        case .resumeJob: "/v1/jobs/{id}/resume"
        case .retryJob: "/v1/jobs/{id}/retry"
        case .patchTasks: "/v1/tasks"
        case .cancelTask: "/v1/tasks/{id}/cancel"
        case .retryTask: "/v1/tasks/{id}/retry"
        case .patchAgent, .deleteAgent: "/v1/agents/{id}"
        case .listCommands, .sendCommand: "/v1/agents/{id}/commands"
        case .reportException, .listExceptions: "/v1/agents/{id}/exceptions"
        case .masterInfo: "/v1/master"
        case .agentMetrics: "/v1/agents/{id}/metrics"
        case .prometheus: "/metrics"
        case .installAgentScript: "/install-agent.sh"
        case .agentPackage: "/packages/{name}"
        case .healthz: "/healthz"
        case .openapi: "/openapi.yaml"
        case .jobGraph: "/v1/jobs/{id}/graph"
        case .throughput: "/v1/throughput"
        case .changes: "/v1/changes"
        case .createToken, .listTokens: "/v1/tokens"
        case .revokeToken: "/v1/tokens/{id}"
        case .whoami: "/v1/whoami"
        case .resetAgent: "/v1/agents/reset"
        }
    }
}

/// Concrete paths, for clients and for `href` fields.
public enum APIPath {
    public static let jobs = "/v1/jobs"
    public static let tasks = "/v1/tasks"
    public static let agents = "/v1/agents"
    public static func job(_ id: JobID) -> String { "/v1/jobs/\(id)" }
    public static func task(_ id: TaskID) -> String { "/v1/tasks/\(id)" }
    public static func taskLogs(_ id: TaskID) -> String { "/v1/tasks/\(id)/logs" }
    public static func taskStart(_ id: TaskID) -> String { "/v1/tasks/\(id)/start" }
    public static func taskProgress(_ id: TaskID) -> String { "/v1/tasks/\(id)/progress" }
    public static func taskFinish(_ id: TaskID) -> String { "/v1/tasks/\(id)/finish" }
    public static func agent(_ id: AgentID) -> String { "/v1/agents/\(id)" }
    public static func heartbeat(_ id: AgentID) -> String { "/v1/agents/\(id)/heartbeat" }
    public static func claim(_ id: AgentID) -> String { "/v1/agents/\(id)/claim" }
    public static func exchange(_ id: AgentID) -> String { "/v1/agents/\(id)/exchange" }
    public static func commands(_ id: AgentID) -> String { "/v1/agents/\(id)/commands" }
    public static func exceptions(_ id: AgentID) -> String { "/v1/agents/\(id)/exceptions" }
    public static let master = "/v1/master"
    public static let changes = "/v1/changes"
    public static let tokens = "/v1/tokens"
    public static func token(_ id: TokenID) -> String { "/v1/tokens/\(id)" }
    public static let whoami = "/v1/whoami"
    public static let agentReset = "/v1/agents/reset"
    public static func metrics(_ id: AgentID) -> String { "/v1/agents/\(id)/metrics" }
    /// `/v1/jobs/{id}/cancel`, `/pause`, `/resume`, `/retry`.
    public static func job(_ id: JobID, _ action: String) -> String { "/v1/jobs/\(id)/\(action)" }
    /// `/v1/tasks/{id}/cancel`, `/retry`.
    public static func task(_ id: TaskID, _ action: String) -> String { "/v1/tasks/\(id)/\(action)" }
}

public enum OpenAPIDocument {
    /// The document served at `/openapi.yaml` (Sources/Protocol/openapi.yaml, embedded at build time).
    public static var yaml: String { String(decoding: PackageResources.openapi_yaml, as: UTF8.self) }
}
