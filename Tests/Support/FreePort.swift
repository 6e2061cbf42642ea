import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A TCP port on 127.0.0.1 that nothing listens on right now: binds port 0, reads back the
/// port the kernel chose, closes the socket. (Another process may take it before the caller
/// binds it; on a test machine that race is rare and shows up as a clear "address in use".)
public func freeLoopbackPort() throws -> Int {
    #if canImport(Glibc)
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let fd = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard fd >= 0 else { throw SupportError("socket(): errno \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw SupportError("bind(127.0.0.1:0): errno \(errno)") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { throw SupportError("getsockname(): errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A socket connected to 127.0.0.1:`port`, or the errno of what failed (the caller closes it).
public func connectLoopback(port: Int) -> Result<Int32, SupportError> {
    #if canImport(Glibc)
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let fd = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard fd >= 0 else { return .failure(SupportError("socket(): errno \(errno)")) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        let reason = errno
        close(fd)
        return .failure(SupportError("connect(127.0.0.1:\(port)): errno \(reason)"))
    }
    return .success(fd)
}

/// Whether something accepts a TCP connection on 127.0.0.1:`port` right now.
public func acceptsConnections(port: Int) -> Bool {
    guard case .success(let fd) = connectLoopback(port: port) else { return false }
    close(fd)
    return true
}

/// What the support types throw: a sentence saying what failed, with the log's tail where there is one.
public struct SupportError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
