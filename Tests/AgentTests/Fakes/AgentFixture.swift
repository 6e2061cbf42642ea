import Foundation
import Logging
@testable import PaddockAgent
import PaddockProtocol
import Testing

/// An agent's parts wired to fakes: the master, the process launcher and the clock. Its work dir is
/// a fresh temporary directory (`close` removes it).
struct AgentFixture {
    let master = FakeMaster()
    let launcher: FakeLauncher
    let clock = FakeClock()
    let config: AgentConfig
    let session: AgentSession
    let workload: Workload
    let outbox: Outbox
    let feed: CommandFeed
    let logger = Logger(label: "paddock.agent.test")

    init(slots: Int = 1, prefetch: PrefetchPolicy = .fixed(0), killGrace: Duration = .seconds(5), exitOnTerm: Bool = true) {
        let workDir = FileManager.default.temporaryDirectory.appendingPathComponent("paddock-agent-\(UUID())").path
        try? FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        var config = AgentConfig(masterURL: URL(string: "http://master.invalid:8420")!, joinToken: "join-token", name: "a1",
                                 workDir: workDir, resources: ResourceVector(milliCPUs: Int64(slots) * 1000, ram: 1 << 30),
                                 tags: [], slots: slots)
        config.prefetch = prefetch
        config.killGrace = killGrace
        self.config = config
        launcher = FakeLauncher(exitOnTerm: exitOnTerm)
        session = AgentSession(config: config, master: master, clock: clock, logger: logger)
        workload = Workload(total: config.resources, slots: slots, prefetch: prefetch, nudge: Nudge(clock: clock))
        outbox = Outbox(nudge: workload.nudge)
        feed = CommandFeed(workDir: workDir, clock: clock)
    }

    var exchangeService: ExchangeService {
        ExchangeService(session: session, workload: workload, outbox: outbox, feed: feed, config: config,
                        launcher: launcher, clock: clock, logger: logger)
    }

    var heartbeatService: HeartbeatService {
        HeartbeatService(session: session, workload: workload, outbox: outbox, config: config, clock: clock, logger: logger)
    }

    func talkbackService(feed: CommandFeed? = nil, shutdown: @escaping @Sendable () -> Void = {}) -> TalkbackService {
        TalkbackService(feed: feed ?? self.feed, workload: workload, config: config, clock: clock, logger: logger,
                        shutdown: shutdown)
    }

    func runner(_ lease: TaskLease) -> TaskRunner {
        TaskRunner(lease: lease, session: AgentSession.Enrolled(id: FakeMaster.agent, master: master), workload: workload,
                   outbox: outbox, config: config, launcher: launcher, clock: clock, logger: logger)
    }

    /// Returns once `condition` holds, looked at again whenever the agent's nudge moves (a report in
    /// the outbox, room freed, the agent leaving): no polling, no sleeping.
    func until(_ condition: @Sendable () async -> Bool) async {
        while true {
            let seen = workload.nudge.generation
            if await condition() { return }
            await workload.nudge.wait(since: seen, timeout: .seconds(86_400))
        }
    }

    /// `lease` held and running in a process the test plays (no runner: nothing ends it but the test).
    func running(_ lease: TaskLease) async throws -> FakeProcess {
        await workload.add(lease)
        let spec = LaunchSpec(task: lease.task, epoch: lease.epoch, resources: lease.requirements.resources, argv: lease.command,
                              environment: lease.env, cwd: config.workDir, user: nil)
        let process = try #require(try launcher.launch(spec) as? FakeProcess)
        #expect(await workload.attach(process, to: lease.task))
        return process
    }

    func close() { try? FileManager.default.removeItem(atPath: config.workDir) }

    static func lease(_ task: Int64, epoch: Int64 = 1, command: [String] = ["render", "frame"], env: [String: String] = [:],
                      timeout: Double? = nil, prefetched: Bool = false) -> TaskLease {
        TaskLease(task: TaskID(rawValue: task), job: JobID(rawValue: 1), name: "task \(task)", epoch: LeaseEpoch(epoch),
                  command: command, env: env, cwd: nil, requirements: TaskRequirements(resources: ResourceVector(milliCPUs: 1000)),
                  timeout: timeout, attempt: 1, prefetched: prefetched)
    }
}
