import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat

extension MasterClient {
    /// A GET whose body arrives piece by piece (chunked transfer), e.g. `logs?follow=true`: each
    /// piece is yielded as it arrives. The stream has no deadline; ending its iteration (or
    /// cancelling the iterating task) closes the connection. A non-2xx answer finishes it with
    /// `ClientError.api`, a broken connection with `.transport`.
    public func stream(_ path: String, query: [String: String] = [:]) -> AsyncThrowingStream<Data, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: Data.self)
        let request: HTTPClientRequest
        do {
            request = try self.request("GET", path, query: query, body: nil, contentType: "")
        } catch {
            continuation.finish(throwing: error)
            return stream
        }
        let pool = self.pool
        let task = Task {
            do {
                let response = try await pool.http.execute(request, deadline: .distantFuture)
                let status = Int(response.status.code)
                guard (200..<300).contains(status) else {
                    let body = try await Self.prefix(of: response.body, upTo: Self.errorBodyLimit)
                    continuation.finish(throwing: ClientError.answer(status: status, body: body))
                    return
                }
                for try await buffer in response.body {
                    continuation.yield(Data(buffer: buffer))
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: ClientError.from(error, "GET", request.url, timeout: .infinity))
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }
}
