import Foundation
import Logging
@testable import PaddockFootprint
import ServiceLifecycle
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A process (an idle agent, a master) drops its clean code pages from its resident set, and nothing else.
@Suite struct ResidentPagesTests {
    /// The last mapping's privately copied pages are swapped out: it holds written pages all the same.
    @Test func onlyPrivateReadOnlyFileMappingsWithNoPrivateCopyAreReleasable() {
        let smaps = """
        00400000-00500000 r-xp 00000000 08:01 1001   /usr/bin/paddock
        Size:               1024 kB
        Rss:                 512 kB
        Anonymous:             0 kB
        Locked:                0 kB
        VmFlags: rd ex mr mw me
        00500000-00600000 r--p 00100000 08:01 1001   /usr/bin/paddock
        Anonymous:            64 kB
        VmFlags: rd mr mw me ac
        00600000-00700000 rw-p 00200000 08:01 1001   /usr/bin/paddock
        Anonymous:             0 kB
        00700000-00800000 r--p 00000000 00:00 0
        Anonymous:             0 kB
        7f0000000000-7f0000100000 r--s 00000000 08:01 2002   /var/lib/shared.db
        Anonymous:             0 kB
        7f0000100000-7f0000200000 r-xp 00000000 08:01 3003   /usr/lib/locked.so
        Anonymous:             0 kB
        Locked:                4 kB
        7f0000200000-7f0000300000 r-xp 00000000 08:01 3004   /usr/lib/pinned.so
        Anonymous:             0 kB
        VmFlags: rd ex mr mw me lo
        7f0000300000-7f0000400000 ---p 00000000 08:01 3005   /usr/lib/guard.so
        7f0000400000-7f0000500000 r--p 00000000 08:01 3006   /usr/lib/locale/locale-archive (deleted)
        Anonymous:             0 kB
        Swap:                  0 kB
        7f0000500000-7f0000600000 r--p 00002000 08:01 3007   /usr/lib/relocated.so
        Anonymous:             0 kB
        Swap:                  8 kB
        """
        #expect(ResidentPages.releasable(smaps: smaps) == [
            .init(start: 0x0040_0000, end: 0x0050_0000),
            .init(start: 0x7F00_0040_0000, end: 0x7F00_0050_0000),
        ])
    }

    /// A file mapped twice: read-only and clean (as code is), and written then made read-only (as a
    /// relocated segment is after RELRO). A release drops the first's pages, which read back from
    /// the file, and leaves the second's private copies as they were.
    @Test func aReleaseDropsCleanPagesAndKeepsWrittenOnes() throws {
        let pages = 16
        let size = pages * Int(sysconf(Int32(_SC_PAGESIZE)))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("resident-\(UUID().uuidString)").path
        defer { unlink(path) }
        try Data((0..<size).map { UInt8($0 % 251) }).write(to: URL(fileURLWithPath: path))
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        try #require(fd >= 0)
        defer { close(fd) }

        let clean = try #require(mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0).flatMap { $0 == MAP_FAILED ? nil : $0 })
        defer { munmap(clean, size) }
        let written = try #require(mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0).flatMap { $0 == MAP_FAILED ? nil : $0 })
        defer { munmap(written, size) }
        var sum = 0
        for page in 0..<pages { sum += Int(clean.load(fromByteOffset: page * size / pages, as: UInt8.self)) }
        for page in 0..<pages { written.storeBytes(of: 0xEE, toByteOffset: page * size / pages, as: UInt8.self) }
        try #require(mprotect(written, size, PROT_READ) == 0)
        #expect(try residentKilobytes(of: clean) == size / 1024, "every page was touched: \(sum)")

        let released = ResidentPages.release()

        let start = UInt(bitPattern: clean)
        #expect(released.contains(.init(start: start, end: start + UInt(size))))
        #expect(!released.contains { $0.start == UInt(bitPattern: written) })
        #expect(try residentKilobytes(of: clean) == 0, "the clean mapping's pages are off the page tables")
        for page in 0..<pages {
            let offset = page * size / pages
            #expect(written.load(fromByteOffset: offset, as: UInt8.self) == 0xEE, "page \(page) kept what was written")
            #expect(clean.load(fromByteOffset: offset, as: UInt8.self) == UInt8(offset % 251), "page \(page) reads back from the file")
        }
    }

    /// The service the master runs asks at every interval, and its first ask releases.
    @Test func theServiceReleasesAtItsInterval() async throws {
        let lines = LogLines()
        let logger = Logger(label: "test") { _ in lines }
        var trim = ResidentTrim("test", logger: { var l = logger; l.logLevel = .debug; return l }())
        #expect(trim.floor == nil)
        let service = ResidentTrimService(every: .milliseconds(20), trim: trim)
        let running = Task { try await service.run() }
        defer { running.cancel() }
        let deadline = ContinuousClock.now + .seconds(60)
        while lines.all.isEmpty, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let line = try #require(lines.all.first, "no release logged within 60 s")
        #expect(line.hasPrefix("test: released "), "\(line)")
        trim.releaseIfGrown()
        #expect(trim.floor != nil)
    }

    /// `Rss:` of the mapping that starts at `address`, in kB (/proc/self/smaps).
    private func residentKilobytes(of address: UnsafeMutableRawPointer) throws -> Int {
        let smaps = String(decoding: try #require(ProcFile.read("/proc/self/smaps")), as: UTF8.self)
        let header = String(UInt(bitPattern: address), radix: 16) + "-"
        var inside = false
        for line in smaps.split(separator: "\n") {
            let token = line.prefix { $0 != " " }
            if token.contains("-"), token.allSatisfy({ $0.isHexDigit || $0 == "-" }) {
                inside = token.hasPrefix(header)
            } else if inside, line.hasPrefix("Rss:") {
                return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? -1
            }
        }
        throw ResidentTestError(description: "no mapping at \(header) in /proc/self/smaps)")
    }

    private struct ResidentTestError: Error, CustomStringConvertible { let description: String }
}

/// Log messages kept for a test to read.
private final class LogLines: LogHandler, Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
    var metadata: Logger.Metadata {
        get { [:] }
        set {}  // a test's lines carry none
    }
    var logLevel: Logger.Level {
        get { .trace }
        set {}  // every level is kept
    }
    subscript(metadataKey _: String) -> Logger.Metadata.Value? {
        get { nil }
        set {}
    }
    func log(event: LogEvent) { lines.withLock { $0.append("\(event.message)") } }
}
