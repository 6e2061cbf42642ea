import Foundation
import PaddockClient
import PaddockProtocol
import Testing

/// An action's `cancelation` on a real agent (issue 18, item 8): NOTIFY_THEN_TERMINATE gives the
/// task its notify period between SIGTERM and SIGKILL (longer than the agent's own 5 s here);
/// TERMINATE kills it at once.
extension EndToEnd.OpenJDEndToEndTests {
    func cancelled(_ cancelation: String, farm: Farm, info: inout String?) async throws -> (done: Bool, pid: Int32) {
        let marks = farm.dir + "/marks-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: marks, withIntermediateDirectories: true)
        let script = "trap 'cp cancel_info.json \(marks)/info 2>/dev/null; sleep 6.5; touch \(marks)/done; exit 3' TERM; echo $$ > \(marks)/pid; while :; do sleep 0.1; done"
        let template = #"""
            {"specificationVersion": "jobtemplate-2023-09", "name": "Stop",
             "steps": [{"name": "S", "script": {"actions": {"onRun": {"command": "sh", "args": ["-c", "\#(script)"],
               "cancelation": \#(cancelation)}}}}]}
            """#
        let job = try await farm.submitRaw(#"{"openjd": {"template": \#(template)}}"#)
        let id = try #require(job.taskIDs?.first)
        var pid: Int32 = 0
        try await eventually("the task wrote its pid", timeout: 60) {
            pid = Int32((try? String(contentsOfFile: marks + "/pid", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
            return pid > 0
        }
        let _: TaskView = try await farm.admin.call("POST", APIPath.task(id) + "/cancel")
        try await eventually("the task's process ended", timeout: 60) { kill(pid, 0) != 0 }
        info = try? String(contentsOfFile: marks + "/info", encoding: .utf8)
        return (FileManager.default.fileExists(atPath: marks + "/done"), pid)
    }

    @Test func cancelationModesStopTheTaskAsTheySay() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("openjd", ["--cpus", "2", "--ram", "2GiB"])
        var info: String?
        let before = Date()
        let notified = try await cancelled(#"{"mode": "NOTIFY_THEN_TERMINATE", "notifyPeriodInSeconds": 30}"#, farm: farm, info: &info)
        #expect(notified.done, "the task's SIGTERM handler finished within its notify period")
        // It found when its notify period ends in cancel_info.json, in its working directory.
        let text = try #require(info)
        let end = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String])["NotifyEnd"]
        let when = try #require(ISO8601DateFormatter().date(from: end ?? ""))
        #expect(when > before.addingTimeInterval(29) && when < Date().addingTimeInterval(31), "\(text)")
        info = nil
        let terminated = try await cancelled(#"{"mode": "TERMINATE"}"#, farm: farm, info: &info)
        #expect(!terminated.done, "TERMINATE killed the task at once")
        #expect(info == nil, "no notify period, no cancel_info.json")
    }
}

extension EndToEnd.OpenJDEndToEndTests {
    /// A cancelled or timed-out task still exits its environments (2023-09: a cancelled session's
    /// environments are exited): each `onExit` runs after the action is stopped, innermost first.
    @Test func environmentsAreExitedWhenATaskIsCancelledOrTimesOut() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("openjd", ["--cpus", "2", "--ram", "2GiB"])
        let marks = farm.dir + "/exits"
        try FileManager.default.createDirectory(atPath: marks, withIntermediateDirectories: true)
        func template(_ name: String, timeout: String) -> String {
            #"""
            {"specificationVersion": "jobtemplate-2023-09", "name": "\#(name)",
             "jobEnvironments": [{"name": "Outer", "script": {"actions": {"onExit": {"command": "sh", "args": ["-c", "echo outer >> \#(marks)/\#(name)"]}}}},
                                 {"name": "Inner", "script": {"actions": {"onExit": {"command": "sh", "args": ["-c", "echo inner >> \#(marks)/\#(name)"]}}}}],
             "steps": [{"name": "S", "script": {"actions": {"onRun": {"command": "sh",
               "args": ["-c", "echo $$ > \#(marks)/\#(name).pid; sleep 300"]\#(timeout)}}}}]}
            """#
        }
        let cancelled = try await farm.submitRaw(#"{"openjd": {"template": \#(template("cancelled", timeout: ""))}}"#)
        // One attempt: a timed-out run is a failure, which with attempts left would run (and exit) again.
        let timedOut = try await farm.submitRaw(#"{"openjd": {"template": \#(template("timedout", timeout: #", "timeout": 2"#))}, "max_attempts": 1}"#)
        let cancelledTask = try #require(cancelled.taskIDs?.first)
        try await eventually("the action runs", timeout: 60) { FileManager.default.fileExists(atPath: marks + "/cancelled.pid") }
        let _: TaskView = try await farm.admin.call("POST", APIPath.task(cancelledTask) + "/cancel")

        #expect(try await farm.waitForJob(cancelled.id, timeout: 60).map(\.state) == [.cancelled])
        try await eventually("both environments were exited", timeout: 30) {
            (try? String(contentsOfFile: marks + "/cancelled", encoding: .utf8)) == "inner\nouter\n"
        }
        let timedOutTasks = try await farm.waitForJob(timedOut.id, timeout: 60)
        #expect(timedOutTasks.map(\.state) == [.failed])
        #expect(timedOutTasks.map(\.reason) == ["timeout"])
        try await eventually("both environments were exited after the timeout", timeout: 30) {
            (try? String(contentsOfFile: marks + "/timedout", encoding: .utf8)) == "inner\nouter\n"
        }
    }
}
