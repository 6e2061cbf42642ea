import Foundation
import PaddockClient
import PaddockProtocol
import Testing

/// OpenJD's stdout messages on a real master and agent (issue 18, item 7): `openjd_status:` is the
/// task's `status` while it runs and after, `openjd_progress:` moves its progress, `openjd_fail:`
/// fails it with that reason even when the process exits 0.
extension EndToEnd.OpenJDEndToEndTests {
    /// The specification's stdout-messages sample, unmodified: its progress reaches 100 % and its
    /// last status stays on the task. The sample runs `python`: the agent's PATH gets one.
    @Test func theStdoutMessagesSampleMovesProgressAndStatus() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        let path = try pythonPath(farm)
        try farm.startAgent("openjd", ["--cpus", "2", "--ram", "2GiB"], environment: ["PATH": path])
        let file = Self.fixtures.appendingPathComponent("stdout-messages.yaml").path
        let submitted = try await cli(farm, ["submit", file, "--json"])
        let job = try WireJSON.decoder().decode(JobView.self, from: Data(submitted.utf8))
        let tasks = try await farm.waitForJob(job.id)
        let task = try #require(tasks.first)
        let log = try await farm.logs(task.id)
        #expect(task.state == .succeeded, "\(log)")
        #expect(task.progress == 1)
        #expect(task.status == "Processing the things")
        let table = try await cli(farm, ["tasks", "--job", job.id.description])
        #expect(table.contains("STATUS") && table.contains("Processing the things"), "\(table)")
    }

    /// A status is seen while the task runs; `openjd_fail:` then fails it with its text as the
    /// reason although the process exits 0.
    @Test func statusShowsWhileRunningAndFailFailsTheTask() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("openjd", ["--cpus", "2", "--ram", "2GiB"])
        let gate = farm.dir + "/go"
        let template = #"""
            {"specificationVersion": "jobtemplate-2023-09", "name": "Messages",
             "steps": [{"name": "S", "script": {"actions": {"onRun": {"command": "sh", "args": ["-c",
               "echo openjd_progress: 25; echo 'openjd_status: Loading the things'; while [ ! -e \#(gate) ]; do sleep 0.05; done; echo 'openjd_fail: The rules of mathematics have been violated!'; echo after; exit 0"]}}}}]}
            """#
        let job = try await farm.submitRaw(#"{"openjd": {"template": \#(template)}}"#)
        let id = try #require(job.taskIDs?.first)
        try await eventually("the status of the running task", timeout: 60) {
            let task = try await farm.task(id)
            return task.state == .running && task.status == "Loading the things" && task.progress == 0.25
        }
        _ = FileManager.default.createFile(atPath: gate, contents: nil)
        let tasks = try await farm.waitForJob(job.id)
        let task = try #require(tasks.first)
        #expect(task.state == .failed)
        #expect(task.exitCode == 0)
        #expect(task.reason == "The rules of mathematics have been violated!")
        #expect(task.status == "Loading the things")
        #expect(try await farm.logs(id).hasSuffix("openjd_fail: The rules of mathematics have been violated!\nafter\n"))
        // The status is no transition: the history lists moves only.
        let history = try #require(try await farm.task(id).history)
        #expect(!history.isEmpty && !history.contains { $0.reason == "Loading the things" })
    }
}

/// A PATH for an agent whose tasks run the samples' `python` (CI hosts may have only `python3`):
/// the farm's `bin` with `python` pointing at python3, then the test's own PATH.
func pythonPath(_ farm: Farm) throws -> String {
    let own = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    let bin = farm.dir + "/bin"
    try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
    guard let python3 = own.split(separator: ":").map({ $0 + "/python3" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) })
    else { throw FarmError("no python3 on PATH (\(own))") }
    if !FileManager.default.fileExists(atPath: bin + "/python") {
        try FileManager.default.createSymbolicLink(atPath: bin + "/python", withDestinationPath: python3)
    }
    return bin + ":" + own
}
