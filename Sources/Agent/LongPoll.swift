import Foundation
#if canImport(Glibc)
import Glibc
#endif
import PaddockProtocol
import Synchronization

/// The agent's long-polls (claim, talkback) over a plain blocking socket on a parked thread.
///
/// Measured: with a claim and a talkback long-poll pending, FoundationNetworking's URLSession
/// (libcurl's multi interface under libdispatch) spins at ~45 % of a core in an idle agent
/// (thousands of epoll/poll/read/write calls a second). A blocked `recv` costs nothing while it
/// waits. Used for `http://` masters; an `https://` one keeps URLSession.
enum LongPoll {
    /// The socket of a poll in flight, so that cancelling the task can shut it down.
    final class Socket: Sendable {
        let fd = Mutex<Int32>(-1)
        func cancel() { fd.withLock { if $0 >= 0 { shutdown($0, Int32(SHUT_RDWR)) } } }
    }

    static func request(url: URL, method: String, token: String, body: Data?, timeout: Double) async throws(ClientError) -> Data {
        let socket = Socket()
        let result: Result<(Int, Data), ClientError> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                Thread.detachNewThread {
                    continuation.resume(returning: perform(url: url, method: method, token: token, body: body,
                                                           timeout: timeout, socket: socket))
                }
            }
        } onCancel: {
            socket.cancel()
        }
        let (status, data) = try result.get()
        guard (200..<300).contains(status) else { throw .answer(status: status, body: data) }
        return data
    }

    /// One request on a fresh connection (`Connection: close`): status and body.
    static func perform(url: URL, method: String, token: String, body: Data?, timeout: Double,
                        socket: Socket) -> Result<(Int, Data), ClientError> {
        guard let host = url.host, !host.isEmpty else { return .failure(.protocolMismatch("no host in \(url)")) }
        let port = url.port ?? 80
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            return .failure(.transport("cannot resolve \(host)"))
        }
        defer { freeaddrinfo(list) }
        var fd: Int32 = -1
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate, fd < 0 {
            let attempt = Glibc.socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue),
                                       info.pointee.ai_protocol)
            if attempt >= 0 {
                if connect(attempt, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { fd = attempt } else { close(attempt) }
            }
            candidate = info.pointee.ai_next
        }
        guard fd >= 0 else { return .failure(.transport("cannot connect to \(host):\(port)")) }
        socket.fd.withLock { $0 = fd }
        defer {
            socket.fd.withLock { $0 = -1 }
            close(fd)
        }
        var limit = timeval(tv_sec: Int(timeout.rounded(.up)), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))

        var target = url.path.isEmpty ? "/" : url.path
        if let query = url.query, !query.isEmpty { target += "?" + query }
        let payload = body ?? Data()
        var head = "\(method) \(target) HTTP/1.1\r\nHost: \(host):\(port)\r\nAuthorization: Bearer \(token)\r\n"
        head += "Connection: close\r\nAccept: application/json\r\n"
        if body != nil { head += "Content-Type: application/json\r\n" }
        head += "Content-Length: \(payload.count)\r\n\r\n"
        let request = Array(head.utf8) + Array(payload)
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return .failure(.transport("send failed (errno \(errno))")) }
            sent += n
        }
        // Read to the end: the master closes the connection after the answer (Connection: close).
        var response = Data()
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while response.count < 16 << 20 {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { response.append(contentsOf: chunk[0..<n]) } else if n < 0 && errno == EINTR { continue } else { break }
            if let parsed = parse(response) { return .success(parsed) }
        }
        return parse(response).map { .success($0) } ?? .failure(.transport("the connection closed before the answer"))
    }

    /// Status and body of a complete HTTP/1.1 answer (Content-Length or chunked), nil while incomplete.
    static func parse(_ data: Data) -> (Int, Data)? {
        let bytes = [UInt8](data)
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = bytes.indices.dropLast(3).first(where: { bytes[$0..<$0 + 4].elementsEqual(separator) }) else { return nil }
        let head = String(decoding: bytes[..<end], as: UTF8.self).lowercased().split(separator: "\r\n")
        guard let statusLine = head.first, let status = statusLine.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        else { return nil }
        let body = Array(bytes[(end + 4)...])
        if let lengthLine = head.first(where: { $0.hasPrefix("content-length:") }),
           let length = Int(lengthLine.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) {
            return body.count >= length ? (status, Data(body.prefix(length))) : nil
        }
        if head.contains(where: { $0.hasPrefix("transfer-encoding:") && $0.contains("chunked") }) {
            var decoded: [UInt8] = []
            var index = 0
            while true {
                guard let lineEnd = body.indices.dropFirst(index).dropLast().first(where: { body[$0] == 13 && body[$0 + 1] == 10 }),
                      let size = Int(String(decoding: body[index..<lineEnd], as: UTF8.self)
                        .split(separator: ";").first?.trimmingCharacters(in: .whitespaces) ?? "", radix: 16) else { return nil }
                let start = lineEnd + 2
                if size == 0 { return (status, Data(decoded)) }
                guard body.count >= start + size + 2 else { return nil }
                decoded += body[start..<(start + size)]
                index = start + size + 2
            }
        }
        return nil  // no length: complete only when the connection closes
    }
}

extension MasterClient {
    /// A long-poll call (claim, talkback): over a parked socket for `http://` masters, else URLSession.
    func longPoll<Reply: Decodable>(_ method: String, _ path: String, query: [String: String] = [:],
                                    json body: (some Encodable)? = Optional<Int>.none, timeout: Double,
                                    as: Reply.Type = Reply.self) async throws(ClientError) -> Reply {
        guard baseURL.scheme == "http" else {
            return try await call(method, path, query: query, json: body, timeout: timeout)
        }
        var components = URLComponents(url: baseURL.appendingPathComponent(path), resolvingAgainstBaseURL: false)
        if !query.isEmpty {
            components?.queryItems = query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        }
        guard let url = components?.url else { throw .protocolMismatch("bad path \(path)") }
        var data: Data?
        if let body {
            do { data = try WireJSON.encoder().encode(body) } catch { throw .protocolMismatch("cannot encode: \(error)") }
        }
        let reply = try await LongPoll.request(url: url, method: method, token: token, body: data, timeout: timeout)
        do { return try WireJSON.decoder().decode(Reply.self, from: reply) } catch {
            throw .protocolMismatch("\(method) \(path): \(error)")
        }
    }
}
