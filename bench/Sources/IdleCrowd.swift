import Foundation
import PaddockClient
import PaddockProtocol
import Synchronization

/// A flag and counters shared by the crowd's tasks, and the tasks themselves (so that `stop` ends them).
final class CrowdState: Sendable {
    private struct State {
        var stopped = false
        var failed = 0
        var lastFailure: String?
        var finished = 0
        var leases = 0
        var tasks: [Task<Void, Never>] = []
    }
    private let state = Mutex(State())

    var isStopped: Bool { state.withLock { $0.stopped } }

    /// Stops the crowd: every task's request in flight is cancelled (its connection closed).
    func stop() {
        let tasks = state.withLock { state in
            state.stopped = true
            return state.tasks
        }
        for task in tasks { task.cancel() }
    }

    func fail(_ error: any Error) { state.withLock { $0.failed += 1; $0.lastFailure = "\(error)" } }
    func taskEnded() { state.withLock { $0.finished += 1 } }
    /// Leases the crowd's long-polls brought (the crowd runs none of them: they stay leased).
    func leased(_ count: Int) { state.withLock { $0.leases += count } }
    var leases: Int { state.withLock { $0.leases } }
    var failures: (count: Int, last: String?) { state.withLock { ($0.failed, $0.lastFailure) } }
    var endedTasks: Int { state.withLock { $0.finished } }

    fileprivate func add(_ task: Task<Void, Never>) {
        let stopped = state.withLock { state in
            state.tasks.append(task)
            return state.stopped
        }
        if stopped { task.cancel() }
    }
}

/// Idle agents' traffic as async tasks on one connection pool of the crowd's own: per agent one
/// exchange long-poll that holds its claim and its talkback poll, plus a few tasks heartbeating every
/// agent every `heartbeat` seconds (as a real idle agent: its wait `AgentConfig.claimWait`, its beats
/// `HeartbeatService.idleInterval`; its long-poll keeps it online). No thread per connection:
/// thousands of long-polls wait on NIO's event loops.
enum IdleCrowd {
    /// Starts the crowd against the master (or frontend) on 127.0.0.1:`port`; returns how many tasks it runs.
    static func start(_ agents: [SimulatedAgent], port: Int, state: CrowdState, claimWait: Int = 50,
                      heartbeat: Double = 60, heartbeatTasks: Int = 8) -> Int {
        // Every long-poll holds a connection: one per agent, one per heartbeat task, and a margin.
        let pool = ConnectionPool(connectionsPerHost: agents.count + heartbeatTasks + 16)
        let base = URL(string: "http://127.0.0.1:\(port)") ?? URL(fileURLWithPath: "/")
        var tasks = 0
        func spawn(_ body: @escaping @Sendable () async -> Void) {
            state.add(Task {
                await body()
                state.taskEnded()
            })
            tasks += 1
        }
        for agent in agents {
            let client = MasterClient(baseURL: base, token: agent.wire.token, pool: pool)
            let id = agent.id
            // Spread the first waits so the re-polls do not come in lockstep.
            let first = Int.random(in: 1...claimWait)
            spawn {
                await hold(state) { round in
                    let wait = Double(round == 0 ? first : claimWait)
                    let poll = ExchangeRequest(claim: ClaimRequest(slots: 1, wait: wait), talkback: TalkbackPoll(after: 0, wait: wait))
                    let answer = try await client.longPoll("POST", APIPath.exchange(id), json: poll, timeout: wait + 60,
                                                           as: ExchangeResponse.self)
                    state.leased(answer.leases.count)
                }
            }
        }
        let clients = agents.map { (id: $0.id, client: MasterClient(baseURL: base, token: $0.wire.token, pool: pool)) }
        for part in 0..<heartbeatTasks {
            let mine = clients.enumerated().filter { $0.offset % heartbeatTasks == part }.map(\.element)
            spawn {
                let pause = heartbeat / Double(max(1, mine.count))
                while !state.isStopped && !Task.isCancelled {
                    for (id, client) in mine {
                        if state.isStopped || Task.isCancelled { return }
                        do {
                            _ = try await client.call("PUT", APIPath.heartbeat(id), json: HeartbeatRequest(held: []),
                                                      as: MasterClient.Empty.self)
                        } catch {
                            if !state.isStopped { state.fail(error) }
                        }
                        try? await Task.sleep(for: .seconds(pause))
                    }
                }
            }
        }
        return tasks
    }

    /// Repeats `request` until the crowd stops; a failure is counted and retried after a second.
    private static func hold(_ state: CrowdState, _ request: @Sendable (Int) async throws -> Void) async {
        var round = 0
        while !state.isStopped && !Task.isCancelled {
            do {
                try await request(round)
                round += 1
            } catch {
                if state.isStopped || Task.isCancelled { return }
                state.fail(error)
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }
}
