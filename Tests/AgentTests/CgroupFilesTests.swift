import Foundation
@testable import PaddockAgent
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `CgroupFiles` keeps each control file open and reads it again from offset 0 with `pread`.
struct CgroupFilesTests {
    /// A file longer than one read's buffer comes whole; a file read again after it changed answers
    /// its new content (the descriptor's offset plays no part).
    @Test func aFileIsReadWholeFromItsStartEveryTime() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("paddock-cgroup-files-\(UUID())").path
        defer { unlink(path) }
        let long = String(repeating: "0123456789abcdef", count: 700)  // 11 200 bytes: three reads
        try long.write(toFile: path, atomically: false, encoding: .utf8)
        let files = CgroupFiles()
        #expect(files.read(path) == long)
        #expect(files.read(path) == long, "read again from the start")
        try files.write("max\n", to: path)  // in place from offset 0, as a control file takes a value
        #expect(files.read(path)?.hasPrefix("max\n") == true)
        let exact = String(repeating: "x", count: 4096)  // exactly one buffer: the next read sees the end
        try exact.write(toFile: path, atomically: false, encoding: .utf8)
        #expect(files.read(path) == exact)
        #expect(files.read("/nonexistent/paddock/cpu.stat") == nil)
    }

    /// A kernel file (a `seq_file`, as cgroup control files are) read twice through one descriptor.
    @Test func aKernelFileReadsTheSameTwice() throws {
        let files = CgroupFiles()
        let first = try #require(files.read("/proc/self/cgroup"))
        #expect(!first.isEmpty)
        #expect(files.read("/proc/self/cgroup") == first)
    }
}
