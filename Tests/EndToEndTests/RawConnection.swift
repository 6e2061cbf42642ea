import Foundation
import PaddockTestSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One TCP connection to 127.0.0.1, written and read byte for byte: for what an HTTP client
/// library will not do (half a request) and for reading an answer's status and headers as sent.
/// Blocking calls: use it through `offThePool`.
final class RawConnection {
    private let fd: Int32

    init(port: Int) throws {
        fd = try connectLoopback(port: port).get()
    }

    deinit { close(fd) }

    #if canImport(Glibc)
    private static let noSignal = Int32(MSG_NOSIGNAL)
    #else
    private static let noSignal: Int32 = 0
    #endif

    func write(_ text: String) throws {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Self.noSignal) }
            guard n > 0 else { throw FarmError("send(): errno \(errno)") }
            sent += n
        }
    }

    /// Reads until the peer closes the connection or `timeout` passes: the bytes read, and whether it closed.
    func readUntilClosed(timeout: Double) -> (bytes: [UInt8], closed: Bool) {
        var received: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let left = Int32(max(1, deadline.timeIntervalSinceNow * 1000))
            guard poll(&poller, 1, min(left, 200)) > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return (received, true) }
            received += buffer[..<n]
        }
        return (received, false)
    }

    /// One answer to a request sent whole: its status, headers (names lowercased) and body.
    func readResponse(timeout: Double) throws -> (status: Int, headers: [String: String], body: String) {
        var received: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            let text = String(decoding: received, as: UTF8.self)
            if let end = text.range(of: "\r\n\r\n") {
                let head = text[..<end.lowerBound].split(separator: "\r\n")
                var headers: [String: String] = [:]
                for line in head.dropFirst() {
                    guard let colon = line.firstIndex(of: ":") else { continue }
                    headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                }
                let length = headers["content-length"].flatMap(Int.init) ?? 0
                let body = Array(received[(text.utf8.distance(from: text.startIndex, to: end.upperBound))...])
                if body.count >= length {
                    let status = head.first.flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Int($0) } ?? 0
                    return (status, headers, String(decoding: body.prefix(length), as: UTF8.self))
                }
            }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 200) > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw FarmError("the connection closed before a whole answer: \(String(decoding: received, as: UTF8.self))") }
            received += buffer[..<n]
        }
        throw FarmError("no whole answer within \(timeout) s")
    }
}
