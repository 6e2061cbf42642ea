import PaddockClient
import Synchronization

/// Items handed from the code under test to the test, in order: `take` returns the first that
/// matches, at once or when it arrives. What tests wait on instead of sleeping.
final class Mailbox<Item: Sendable>: Sendable {
    private struct Waiter {
        var matches: @Sendable (Item) -> Bool
        var continuation: CheckedContinuation<Item, Never>
    }
    private struct State {
        var items: [Item] = []
        var waiters: [Waiter] = []
    }
    private let state = Mutex(State())

    func put(_ item: Item) {
        let waiter = state.withLock { state -> CheckedContinuation<Item, Never>? in
            if let index = state.waiters.firstIndex(where: { $0.matches(item) }) {
                return state.waiters.remove(at: index).continuation
            }
            state.items.append(item)
            return nil
        }
        waiter?.resume(returning: item)
    }

    func take(where matches: @escaping @Sendable (Item) -> Bool = { _ in true }) async -> Item {
        await withCheckedContinuation { continuation in
            let found = state.withLock { state -> Item? in
                if let index = state.items.firstIndex(where: matches) { return state.items.remove(at: index) }
                state.waiters.append(Waiter(matches: matches, continuation: continuation))
                return nil
            }
            if let found { continuation.resume(returning: found) }
        }
    }

    /// What arrived and was not taken.
    var waiting: [Item] { state.withLock { $0.items } }

    /// Takes every item already here that `matches`, at once.
    func takeAll(where matches: (Item) -> Bool) -> [Item] {
        state.withLock { state in
            let taken = state.items.filter(matches)
            state.items.removeAll(where: matches)
            return taken
        }
    }
}

/// A call the code under test made and waits on until the test answers it (or it is cancelled).
final class PendingCall<Request: Sendable, Response: Sendable>: Sendable {
    let request: Request
    private enum State {
        case unanswered
        case waiting(CheckedContinuation<Result<Response, ClientError>, Never>)
        case answered(Result<Response, ClientError>)
        case done
    }
    private let state = Mutex(State.unanswered)

    init(_ request: Request) { self.request = request }

    var isLive: Bool {
        state.withLock { state in
            switch state {
            case .unanswered, .waiting: true
            case .answered, .done: false
            }
        }
    }

    func answer(_ response: Response) { resolve(.success(response)) }
    func fail(_ error: ClientError) { resolve(.failure(error)) }

    fileprivate func resolve(_ result: Result<Response, ClientError>) {
        let continuation = state.withLock { state -> CheckedContinuation<Result<Response, ClientError>, Never>? in
            switch state {
            case .unanswered:
                state = .answered(result)
                return nil
            case .waiting(let continuation):
                state = .done
                return continuation
            case .answered, .done:
                return nil
            }
        }
        continuation?.resume(returning: result)
    }

    fileprivate func wait() async -> Result<Response, ClientError> {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> Result<Response, ClientError>? in
                    if case .answered(let result) = state {
                        state = .done
                        return result
                    }
                    state = .waiting(continuation)
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            resolve(.failure(.transport("cancelled")))
        }
    }
}

/// The calls of one kind the code under test made: each waits for the test's answer, or is answered
/// at once once the test said how (`answerFromNowOn`).
final class CallQueue<Request: Sendable, Response: Sendable>: Sendable {
    typealias Call = PendingCall<Request, Response>
    typealias Answers = @Sendable (Request) -> Response?
    private struct State {
        var made: [Request] = []
        var answers: Answers?
    }
    private let pending = Mailbox<Call>()
    private let state = Mutex(State())

    /// Every request made, answered or not, in order.
    var requests: [Request] { state.withLock { $0.made } }

    /// Waits for the test's answer to `request`.
    func call(_ request: Request) async throws(ClientError) -> Response {
        try await result(request).get()
    }

    func result(_ request: Request) async -> Result<Response, ClientError> {
        // Looked up and queued in one step: a call is either answered here or found by
        // `answerFromNowOn`, never missed by both.
        let queued = state.withLock { state -> Queued in
            state.made.append(request)
            if let response = state.answers?(request) { return .answered(response) }
            let call = Call(request)
            pending.put(call)
            return .waiting(call)
        }
        switch queued {
        case .answered(let response): return .success(response)
        case .waiting(let call): return await call.wait()
        }
    }

    private enum Queued { case answered(Response), waiting(Call) }

    /// From now on every call that `answers` answers (non-nil) gets that answer at once; so do the
    /// calls already waiting that the test has not taken (`next`). A call made just before the test
    /// changed its mind (a report sent as the test ends) then does not wait forever.
    func answerFromNowOn(_ answers: @escaping Answers) {
        let waiting = state.withLock { state -> [(Call, Response)] in
            state.answers = answers
            return pending.takeAll { $0.isLive && answers($0.request) != nil }.compactMap { call in
                answers(call.request).map { (call, $0) }
            }
        }
        for (call, response) in waiting { call.answer(response) }
    }

    /// The next call still waiting for an answer that `matches`.
    func next(where matches: @escaping @Sendable (Request) -> Bool = { _ in true }) async -> Call {
        await pending.take { $0.isLive && matches($0.request) }
    }
}
