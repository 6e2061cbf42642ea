import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A blocking HTTP/1.1 keep-alive connection to the master on loopback, for one thread.
///
/// The idle-crowd measurement holds thousands of long-polls at once. FoundationNetworking's
/// URLSession (libcurl) spins a CPU and starves the cooperative pool with a few hundred requests
/// in flight, which would measure the harness instead of the master; plain sockets on parked
/// threads cost nothing while they wait. Bodies are read only to find where an answer ends.
final class RawConnection {
    private let port: Int
    private var fd: Int32 = -1

    init(port: Int) { self.port = port }
    deinit { close() }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Sends one request and reads its answer; returns the status code.
    func request(_ method: String, _ path: String, token: String, json: String? = nil, timeout: Int = 120) throws -> Int {
        if fd < 0 { try connect(timeout: timeout) }
        let body = Array((json ?? "").utf8)
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nAuthorization: Bearer \(token)\r\n"
        if json != nil { head += "Content-Type: application/json\r\n" }
        head += "Content-Length: \(body.count)\r\n\r\n"
        do {
            try send(Array(head.utf8) + body)
            return try readResponse()
        } catch {
            close()
            throw error
        }
    }

    private func connect(timeout: Int) throws {
        let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socketFD >= 0 else { throw BenchError("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            Glibc.close(socketFD)
            throw BenchError("connect: errno \(errno)")
        }
        var limit = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(socketFD, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        fd = socketFD
    }

    private func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw BenchError("send: errno \(errno)") }
            sent += n
        }
    }

    private func readResponse() throws -> Int {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        func fill() throws {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw BenchError(n == 0 ? "connection closed" : "recv: errno \(errno)") }
            buffer += chunk[0..<n]
        }
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        var headerEnd: Int?
        while headerEnd == nil {
            try fill()
            headerEnd = Self.find(separator, in: buffer)
        }
        guard let headerEnd else { throw BenchError("no header") }
        let head = String(decoding: buffer[..<headerEnd], as: UTF8.self).lowercased()
        let lines = head.split(separator: "\r\n")
        guard let statusLine = lines.first, statusLine.split(separator: " ").count >= 2,
              let status = Int(statusLine.split(separator: " ")[1]) else { throw BenchError("bad status line") }
        let bodyStart = headerEnd + separator.count
        if let length = lines.first(where: { $0.hasPrefix("content-length:") })
            .flatMap({ Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) }) {
            while buffer.count - bodyStart < length { try fill() }
        } else if head.contains("transfer-encoding: chunked") {
            let terminator: [UInt8] = Array("0\r\n\r\n".utf8)
            while Self.find(terminator, in: Array(buffer[bodyStart...])) == nil { try fill() }
        }
        return status
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if Array(haystack[start..<(start + needle.count)]) == needle { return start }
        }
        return nil
    }
}

/// A flag and counters shared by the crowd's threads.
final class CrowdState: @unchecked Sendable {
    // @unchecked: every stored property is read and written only while holding `lock`.
    private let lock = NSLock()
    private var stopped = false
    private var failed = 0
    private var lastFailure: String?
    private var finished = 0

    var isStopped: Bool { lock.withLock { stopped } }
    func stop() { lock.withLock { stopped = true } }
    func fail(_ error: any Error) { lock.withLock { failed += 1; lastFailure = "\(error)" } }
    func threadEnded() { lock.withLock { finished += 1 } }
    var failures: (count: Int, last: String?) { lock.withLock { (failed, lastFailure) } }
    var endedThreads: Int { lock.withLock { finished } }
}

/// Idle agents' traffic on parked threads: per agent a claim long-poll and a talkback long-poll,
/// plus a few threads heartbeating every agent every `heartbeat` seconds.
enum IdleCrowd {
    static func start(_ agents: [SimulatedAgent], port: Int, state: CrowdState, claimWait: Int = 20,
                      commandWait: Int = 30, heartbeat: Double = 10, heartbeatThreads: Int = 8) -> Int {
        var threads = 0
        func spawn(_ body: @escaping @Sendable () -> Void) {
            let thread = Thread {
                body()
                state.threadEnded()
            }
            thread.stackSize = 256 * 1024
            thread.start()
            threads += 1
        }
        for agent in agents {
            let token = agent.wire.token
            let id = agent.id.description
            // Spread the first waits so the re-polls do not come in lockstep.
            let firstClaim = Int.random(in: 1...claimWait)
            let firstCommands = Int.random(in: 1...commandWait)
            spawn {
                hold(port: port, state: state) { connection, round in
                    let wait = round == 0 ? firstClaim : claimWait
                    _ = try connection.request("POST", "/v1/agents/\(id)/claim", token: token,
                                               json: #"{"slots":1,"wait":\#(wait)}"#, timeout: wait + 60)
                }
            }
            spawn {
                hold(port: port, state: state) { connection, round in
                    let wait = round == 0 ? firstCommands : commandWait
                    _ = try connection.request("GET", "/v1/agents/\(id)/commands?after=0&wait=\(wait)", token: token,
                                               timeout: wait + 60)
                }
            }
        }
        let tokens = agents.map { ($0.id.description, $0.wire.token) }
        for part in 0..<heartbeatThreads {
            let mine = tokens.enumerated().filter { $0.offset % heartbeatThreads == part }.map(\.element)
            spawn {
                let connection = RawConnection(port: port)
                let pause = heartbeat / Double(max(1, mine.count))
                while !state.isStopped {
                    for (id, token) in mine {
                        if state.isStopped { return }
                        do {
                            _ = try connection.request("PUT", "/v1/agents/\(id)/heartbeat", token: token, json: #"{"held":[]}"#)
                        } catch {
                            if !state.isStopped { state.fail(error) }
                        }
                        Thread.sleep(forTimeInterval: pause)
                    }
                }
            }
        }
        return threads
    }

    /// Repeats `request` until the crowd stops; a failure is counted and retried after a second.
    private static func hold(port: Int, state: CrowdState, _ request: (RawConnection, Int) throws -> Void) {
        let connection = RawConnection(port: port)
        var round = 0
        while !state.isStopped {
            do {
                try request(connection, round)
                round += 1
            } catch {
                if state.isStopped { return }
                state.fail(error)
                Thread.sleep(forTimeInterval: 1)
            }
        }
    }
}
