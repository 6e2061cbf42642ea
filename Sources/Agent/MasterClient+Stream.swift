import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import PaddockProtocol
import Synchronization

extension MasterClient {
    /// A GET whose body arrives piece by piece (chunked transfer), e.g. `logs?follow=true`.
    /// `URLSession.bytes(for:)` does not exist on Linux; a data delegate sees each chunk as it comes.
    public func stream(_ path: String, query: [String: String] = [:]) -> AsyncThrowingStream<Data, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: Data.self)
        var components = URLComponents(url: baseURL.appendingPathComponent(path), resolvingAgainstBaseURL: false)
        if !query.isEmpty {
            components?.queryItems = query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        }
        guard let url = components?.url else {
            continuation.finish(throwing: ClientError.protocolMismatch("bad path \(path)"))
            return stream
        }
        var request = URLRequest(url: url, timeoutInterval: 3600)
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let delegate = StreamDelegate(continuation: continuation)
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 3600
        let session = URLSession(configuration: configuration, delegate: delegate, delegateQueue: nil)
        let task = session.dataTask(with: request)
        continuation.onTermination = { _ in
            task.cancel()
            session.finishTasksAndInvalidate()
        }
        task.resume()
        return stream
    }
}

/// Forwards each received chunk to the stream; a non-2xx answer becomes a `ClientError.api`.
/// `@unchecked Sendable`: URLSession calls it from its own queue; its only mutable state (the
/// status and an error body) is inside a `Mutex`, and the continuation is itself Sendable.
private final class StreamDelegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let continuation: AsyncThrowingStream<Data, any Error>.Continuation
    private let state = Mutex<(status: Int, errorBody: Data)>((0, Data()))

    init(continuation: AsyncThrowingStream<Data, any Error>.Continuation) {
        self.continuation = continuation
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        state.withLock { $0.status = status }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        let failed = state.withLock { state -> Bool in
            guard !(200..<300).contains(state.status) else { return false }
            if state.errorBody.count < 64 * 1024 { state.errorBody.append(data) }
            return true
        }
        if !failed { continuation.yield(data) }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        let (status, body) = state.withLock { ($0.status, $0.errorBody) }
        if let error {
            continuation.finish(throwing: ClientError.transport(error.localizedDescription))
        } else if !(200..<300).contains(status) {
            continuation.finish(throwing: ClientError.answer(status: status, body: body))
        } else {
            continuation.finish()
        }
        session.finishTasksAndInvalidate()
    }
}
