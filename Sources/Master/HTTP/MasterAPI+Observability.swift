import Foundation
import Hummingbird
import NIOCore
import PaddockProtocol

extension MasterAPI {
    func reportException(_ request: Request, _ context: MasterContext) async throws -> Response {
        let id = try Self.id(AgentID.self, context, what: "agent")
        _ = try context.requireAgent(id)
        let report = try await Self.decode(ExceptionReport.self, from: request, limit: ExceptionReport.maxBytes)
        let view = try await store.addException(agent: id, report, now: store.clock.now())
        await changes.notifyAll()  // the dashboard lists recent exceptions
        return try Self.json(view, status: .created)
    }

    func listExceptions(_ request: Request, _ context: MasterContext) async throws -> Response {
        try context.require(.read)
        let id = try Self.id(AgentID.self, context, what: "agent")
        return try Self.json(try await store.exceptions(agent: id, page: try Self.page(request)))
    }

    /// The agent's host samples: `since` is an ISO 8601 time or a number of seconds ago (default one hour).
    func agentMetrics(_ request: Request, _ context: MasterContext) async throws -> Response {
        try context.require(.read)
        let id = try Self.id(AgentID.self, context, what: "agent")
        var since = Date().addingTimeInterval(-3600)
        if let text = Self.query(request, "since") {
            if let seconds = Double(text), seconds.isFinite, seconds >= 0 {
                since = Date().addingTimeInterval(-seconds)
            } else if let date = ISO8601DateFormatter().date(from: text) {
                since = date
            } else {
                throw PaddockError.invalid("since is an ISO 8601 time or a number of seconds ago", field: "since")
            }
        }
        let samples = try await store.metricsSeries(agent: id, since: since)
        return try Self.json(Page(items: samples, next: nil))
    }

    func masterInfo(_ request: Request, _ context: MasterContext) async throws -> Response {
        try context.require(.read)
        let summary = try await store.summary()
        let p = stats.percentiles()
        return try Self.json(MasterInfo(
            version: PaddockVersion.current, startedAt: stats.startedAt,
            uptimeSeconds: Date().timeIntervalSince(stats.startedAt), store: store.backend,
            requests: stats.requestsAnswered, unhandledErrors: stats.unhandledErrors,
            requestMilliseconds: .init(p50: p.p50, p90: p.p90, p99: p.p99), claims: stats.claimsAnswered,
            steals: stats.tasksStolen, jobs: summary.jobs, tasks: TaskCounts(summary.tasks),
            agents: Dictionary(uniqueKeysWithValues: AgentState.allCases.map { ($0.rawValue, summary.agents[$0] ?? 0) })))
    }

    /// Prometheus text: the counters and histogram kept as requests pass, and gauges of the farm
    /// read from the store at each scrape.
    func prometheus(_ request: Request, _ context: MasterContext) async throws -> Response {
        let summary = try await store.summary()
        stats.syncClaimWakeups(await wake.woken)
        let registry = stats.registry
        for state in TaskState.allCases {
            registry.makeGauge(descriptor: .paddock("paddock_tasks", help: "Tasks by state"), labels: [("state", state.rawValue)])
                .set(Double(summary.tasks[state] ?? 0))
        }
        for state in AgentState.allCases {
            registry.makeGauge(descriptor: .paddock("paddock_agents", help: "Agents by state"), labels: [("state", state.rawValue)])
                .set(Double(summary.agents[state] ?? 0))
        }
        registry.makeGauge(descriptor: .paddock("paddock_jobs", help: "Jobs (not archived)")).set(Double(summary.jobs))
        registry.makeGauge(descriptor: .paddock("paddock_uptime_seconds", help: "Seconds since the master started"))
            .set(Date().timeIntervalSince(stats.startedAt))
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
    }
}
