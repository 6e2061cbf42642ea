import Foundation
import PaddockClient
import PaddockProtocol
import Testing

/// Exceptions, master information and Prometheus metrics, with real processes.
extension EndToEnd { @Suite struct ObservabilityTests {
    @Test func missingExecutableFailsTheTaskAndIsListedAsAnException() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("worker", ["--cpus", "1", "--ram", "1GiB"])
        var job = JobSubmission(name: "broken", tasks: [TaskSpec(name: "ghost", command: ["/no/such/program", "--flag"])])
        job.maxAttempts = 1
        let submitted = try await farm.submit(job)
        let tasks = try await farm.waitForJob(submitted.id, timeout: 20)
        #expect(tasks.map(\.state) == [.failed])
        #expect(tasks[0].reason?.contains("no such executable") == true, "\(tasks[0].reason ?? "-")")
        #expect(try await farm.logs(tasks[0].id).contains("/no/such/program"))

        let worker = try #require(try await farm.agent(named: "worker"))
        try await eventually("the exception is listed", timeout: 10) {
            let page: Page<ExceptionView> = try await farm.admin.call("GET", APIPath.exceptions(worker.id))
            return page.items.count == 1
        }
        let page: Page<ExceptionView> = try await farm.admin.call("GET", APIPath.exceptions(worker.id))
        #expect(page.items[0].type == "launch_failed")
        #expect(page.items[0].task == tasks[0].id)
        // The agent keeps claiming.
        let next = try await farm.submit(JobSubmission(name: "next", tasks: [shell("echo fine")]))
        #expect(try await farm.waitForJob(next.id, timeout: 20).map(\.state) == [.succeeded])
    }

    @Test func masterInformationAndPrometheusMetrics() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("worker", ["--cpus", "1", "--ram", "1GiB"])
        let job = try await farm.submit(JobSubmission(name: "two", tasks: [shell("true"), shell("true")]))
        _ = try await farm.waitForJob(job.id, timeout: 20)

        let info: MasterInfo = try await farm.admin.call("GET", APIPath.master)
        #expect(info.store == "sqlite")
        #expect(info.version == PaddockVersion.current)
        #expect(info.requests > 0 && info.claims > 0)
        #expect(info.tasks[.succeeded] == 2 && info.jobs == 1)
        #expect(info.agents["online"] == 1)
        #expect(info.requestMilliseconds.p50 > 0 && info.requestMilliseconds.p50 <= info.requestMilliseconds.p99)

        let text = String(decoding: try await MasterClient(baseURL: URL(string: farm.url)!, token: "").raw("GET", "/metrics"),
                          as: UTF8.self)
        // A strict parser decides that it is Prometheus text: prometheus_client's (PyPI, installed by .ci/run).
        let parsed = try python("""
            import sys
            from prometheus_client.parser import text_string_to_metric_families
            families = {f.name: f for f in text_string_to_metric_families(sys.stdin.read())}
            tasks = {s.labels["state"]: s.value for s in families["paddock_tasks"].samples}
            print(int(tasks["succeeded"]), int(families["paddock_http_requests"].samples[0].value > 0),
                  len(families["paddock_http_request_duration_seconds"].samples) > 3)
            """, input: text)
        #expect(parsed == "2 1 True\n", "\(parsed)\n\(text)")
    }
} }

/// Runs a Python script with `input` on its stdin; returns its stdout (fails the test on a non-zero exit).
func python(_ script: String, input: String) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script]
    let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = stderr
    try process.run()
    stdin.fileHandleForWriting.write(Data(input.utf8))
    try stdin.fileHandleForWriting.close()
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    let errors = stderr.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "python: \(String(decoding: errors, as: UTF8.self))")
    return String(decoding: output, as: UTF8.self)
}
