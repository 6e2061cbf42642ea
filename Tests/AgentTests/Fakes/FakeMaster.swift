import Foundation
@testable import PaddockAgent
import PaddockClient
import PaddockProtocol
import Synchronization

/// The master as the agent's services see it (`MasterLink`): enrollment and heartbeats answered at
/// once; exchanges wait for the test's answer (`exchanges.next`).
final class FakeMaster: MasterLink {
    static let agent = AgentID(rawValue: 7)
    let exchanges = CallQueue<ExchangeRequest, ExchangeResponse>()
    let heartbeats = Mailbox<HeartbeatRequest>()
    let exceptions = Mailbox<ExceptionReport>()
    private struct State {
        var tokens: [String] = []
        var longPollAnswersOutliveCancellation = false
        var beats: [HeartbeatRequest] = []
        /// What the next heartbeats' answers say is lost, in turn; a failure instead, when one is queued.
        var beatAnswers: [Result<[HeldLease], ClientError>] = []
    }
    private let state = Mutex(State())

    /// From now on exchanges with no long-poll are answered at once, every report acknowledged,
    /// and so are those already waiting that the test has not taken (long-polls still wait for the
    /// test, or for their cancellation).
    func acknowledgeReports() { exchanges.answerFromNowOn { $0.wait == 0 ? Self.acknowledging($0) : nil } }

    /// From now on a long-poll returns the test's answer even when the agent cancelled it meanwhile,
    /// as a real answer already on the wire when the agent gives up on it does.
    func answerLongPollsDespiteCancellation() { state.withLock { $0.longPollAnswersOutliveCancellation = true } }

    var tokens: [String] { state.withLock { $0.tokens } }

    /// The next heartbeat is answered with `lost`, or fails with `error`.
    func answerNextHeartbeat(lost: [HeldLease]) { state.withLock { $0.beatAnswers.append(.success(lost)) } }
    func failNextHeartbeat(_ error: ClientError) { state.withLock { $0.beatAnswers.append(.failure(error)) } }
    var beats: [HeartbeatRequest] { state.withLock { $0.beats } }

    /// Every report of `request` acknowledged, output included.
    static func acknowledging(_ request: ExchangeRequest) -> ExchangeResponse {
        ExchangeResponse(logs: request.logs.map { ExchangeLogAck(task: $0.task, epoch: $0.epoch, size: $0.offset + Int64($0.data.count)) })
    }

    func with(token: String) -> FakeMaster {
        state.withLock { $0.tokens.append(token) }
        return self
    }

    func enroll(_ request: EnrollRequest) async throws(ClientError) -> EnrollResponse {
        EnrollResponse(id: Self.agent, credential: "credential-of-\(request.name)", leaseTimeout: 30, heartbeatInterval: 10)
    }

    func exchange(_ request: ExchangeRequest, agent: AgentID, timeout: Double) async throws(ClientError) -> ExchangeResponse {
        if request.wait > 0, state.withLock({ $0.longPollAnswersOutliveCancellation }) {
            // An unstructured task: the caller's cancellation does not reach the pending call.
            let exchanges = self.exchanges
            return try await Task { await exchanges.result(request) }.value.get()
        }
        return try await exchanges.call(request)
    }

    func heartbeat(_ beat: HeartbeatRequest, agent: AgentID, timeout: Double) async throws(ClientError) -> HeartbeatResponse {
        let answer = state.withLock { state in
            state.beats.append(beat)
            return state.beatAnswers.isEmpty ? .success([]) : state.beatAnswers.removeFirst()
        }
        heartbeats.put(beat)
        return HeartbeatResponse(state: beat.leaving ? .offline : .online, lost: try answer.get(), leaseTimeout: 30,
                                 heartbeatInterval: 10)
    }

    func report(_ exception: ExceptionReport, agent: AgentID) async throws(ClientError) {
        exceptions.put(exception)
    }
}
