import Foundation
@testable import PaddockAgent
import PaddockProtocol
import Testing

/// The ledger of running tasks' process groups, with real child processes and a real directory.
@Suite struct ProcessLedgerTests {
    /// Slot files are written in place run after run: a freed slot serves the next run, a shorter
    /// record over a longer one is read up to its `end`, and a restarted agent kills what the record
    /// names and removes the files.
    @Test func slotsAreReusedAndARestartedAgentReapsWhatTheyName() async throws {
        let workDir = NSTemporaryDirectory() + "paddock-ledger-slots-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: workDir) }
        try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        let task = TaskID(rawValue: 9107)
        let child = try ChildProcess.launch(argv: ["sleep", "300"],
                                            environment: ["PATH": "/usr/bin:/bin", "PADDOCK_TASK_ID": "\(task)"], cwd: "/tmp")
        do {
            let ledger = ProcessLedger(workDir: workDir)
            // An earlier run with a long record, ended: its slot is free and serves the next run.
            ledger.record(task: TaskID(rawValue: 1), processGroup: 4242,
                          cgroup: ["/sys/fs/cgroup/no-such-paddock-dir/" + String(repeating: "x", count: 200)])
            ledger.forget(task: TaskID(rawValue: 1))
            let freed = try String(contentsOfFile: workDir + "/running/slot-0", encoding: .utf8)
            #expect(ProcessLedger.entry(name: "slot-0", text: freed) == nil, "a freed slot names no task")
            ledger.record(task: task, processGroup: child.pid)
            #expect(try FileManager.default.contentsOfDirectory(atPath: workDir + "/running") == ["slot-0"])
            let text = try String(contentsOfFile: workDir + "/running/slot-0", encoding: .utf8)
            let entry = try #require(ProcessLedger.entry(name: "slot-0", text: text))
            #expect(entry.task == task && entry.group == child.pid && entry.cgroup.isEmpty,
                    "the shorter record ends at its own `end`, whatever the longer one left after it")
            // A second run at once takes a second slot.
            ledger.record(task: TaskID(rawValue: 2), processGroup: 4343)
            #expect(Set(try FileManager.default.contentsOfDirectory(atPath: workDir + "/running")) == ["slot-0", "slot-1"])
            ledger.forget(task: TaskID(rawValue: 2))
        }
        // The agent killed and started again: a new ledger on the same directory.
        #expect(ProcessLedger(workDir: workDir).reapOrphans() == 1)
        #expect(await child.waitForExit() == .signaled(SIGKILL))
        #expect(try FileManager.default.contentsOfDirectory(atPath: workDir + "/running").isEmpty)
    }

    /// A file named after its task (as agents before slot files wrote them) is still read.
    @Test func aFileNamedAfterItsTaskIsReadAsBefore() throws {
        let entry = try #require(ProcessLedger.entry(name: "t77", text: "1234\n/sys/fs/cgroup/unified/paddock-1/run-3\n"))
        #expect(entry.task == TaskID(rawValue: 77) && entry.group == 1234)
        #expect(entry.cgroup == ["/sys/fs/cgroup/unified/paddock-1/run-3"])
        #expect(ProcessLedger.entry(name: "slot-3", text: "t77\n1234\n") == nil, "a torn record (no end) is skipped")
        #expect(ProcessLedger.entry(name: "slot-3", text: "t77\n1234\nend t76\n") == nil,
                "a torn record over an older one (whose end names another task) is skipped")
        #expect(ProcessLedger.entry(name: "slot-3", text: "t77\n1234\nend t77\n")?.group == 1234)
        #expect(ProcessLedger.entry(name: "notes.txt", text: "t77\n1234\nend t77\n") == nil)
    }
}
