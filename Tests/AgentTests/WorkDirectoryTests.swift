import Foundation
@testable import PaddockAgent
import PaddockProtocol
import Testing

/// Run directories: an emptied one is renamed into the next run's place; one its run changed is not.
@Suite struct WorkDirectoryTests {
    @Test func anEmptiedRunDirectoryServesTheNextRunAndAChangedOneIsRemoved() throws {
        let parent = NSTemporaryDirectory() + "paddock-workdirs-\(getpid())-\(UInt32.random(in: 0...UInt32.max))/tasks"
        defer { try? FileManager.default.removeItem(atPath: parent + "/..") }
        WorkDirectory.make(parent + "/t1-e1")
        var first = stat()
        #expect(stat(parent + "/t1-e1", &first) == 0)
        WorkDirectory.recycle(parent + "/t1-e1")
        #expect(WorkDirectory.spareCount(in: parent) == 1)
        #expect(!FileManager.default.fileExists(atPath: parent + "/t1-e1"))

        WorkDirectory.make(parent + "/t2-e1")
        var second = stat()
        #expect(stat(parent + "/t2-e1", &second) == 0)
        #expect(second.st_ino == first.st_ino, "the spare was renamed into place, not a new directory made")
        #expect(WorkDirectory.spareCount(in: parent) == 0)

        // A run that left a file, and one that changed its directory's mode: neither is kept.
        _ = FileManager.default.createFile(atPath: parent + "/t2-e1/frame.exr", contents: Data("x".utf8))
        WorkDirectory.recycle(parent + "/t2-e1")
        WorkDirectory.make(parent + "/t3-e1")
        chmod(parent + "/t3-e1", 0o777)
        WorkDirectory.recycle(parent + "/t3-e1")
        #expect(WorkDirectory.spareCount(in: parent) == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent).isEmpty)

        // A run's directory that is there already (an earlier run of the agent left it, not empty) is
        // used as it is, and the spare is kept.
        WorkDirectory.make(parent + "/t5-e1")
        WorkDirectory.recycle(parent + "/t5-e1")
        try FileManager.default.createDirectory(atPath: parent + "/t6-e1", withIntermediateDirectories: false)
        _ = FileManager.default.createFile(atPath: parent + "/t6-e1/left.txt", contents: Data("x".utf8))
        WorkDirectory.make(parent + "/t6-e1")
        #expect(FileManager.default.fileExists(atPath: parent + "/t6-e1/left.txt"))
        #expect(WorkDirectory.spareCount(in: parent) == 1)
        WorkDirectory.remove(parent + "/t6-e1")

        // An agent started again removes the spares an earlier run left.
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent).count == 1)
        WorkDirectory.removeSpares(in: parent)
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent).isEmpty)
        #expect(WorkDirectory.spareCount(in: parent) == 0)
    }
}
