import Foundation
@testable import PaddockAgent
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The agent raises its soft limit on open files to the hard one (kept cgroup files add up).
@Suite struct OpenFileLimitTests {
    @Test func theSoftLimitIsRaisedToTheHardOne() throws {
        let before = try #require(OpenFileLimit.current)
        let raised = try #require(OpenFileLimit.raise())
        let after = try #require(OpenFileLimit.current)
        #expect(raised.before == before.soft && raised.after == after.soft && after.hard == before.hard)
        // Raising the soft limit up to the hard one is always allowed, unless the hard one is unlimited
        // (above what the kernel lets a process open).
        #expect(after.soft == after.hard || after.hard == rlim_t.max)
    }
}
