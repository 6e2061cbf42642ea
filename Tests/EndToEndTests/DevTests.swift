import Foundation
import PaddockClient
import PaddockProtocol
import Testing

/// `paddock dev`: the zero-config first run, and a clean stop on SIGTERM.
extension EndToEnd { @Suite struct DevTests {
    @Test func devRunsTheSampleJobAndStopsOnSIGTERM() async throws {
        let farm = try Farm()
        let port = try freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Farm.binary)
        process.arguments = ["dev", "--listen", "127.0.0.1:\(port)", "--data", farm.dir + "/dev", "--cpus", "2"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

        // It prints the URL and the tokens it uses.
        var printed = ""
        try await eventually("dev prints its admin token", timeout: 20) {
            printed += String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
            return printed.contains("join token:")
        }
        let admin = try #require(printed.split(separator: "\n").first { $0.contains("admin token:") }?
            .split(separator: " ").last.map(String.init))
        #expect(printed.contains("http://127.0.0.1:\(port)"))

        let client = MasterClient(baseURL: URL(string: "http://127.0.0.1:\(port)")!, token: admin)
        let sample = try Data(contentsOf: URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("examples/hello.yaml"))
        let yaml = String(decoding: sample, as: UTF8.self)
        #expect(yaml.contains("name: hello"))
        let job: JobView = try await client.call("POST", APIPath.jobs, json: JobSubmission(name: "dev", tasks: [
            TaskSpec(name: "hi", command: ["sh", "-c", "echo hi from $PADDOCK_AGENT_NAME"]),
        ]))
        try await eventually("the job succeeds", timeout: 30) {
            let view: JobView = try await client.call("GET", APIPath.job(job.id))
            return view.state == .succeeded
        }
        let taskID = try #require(job.taskIDs?.first)
        let log = String(decoding: try await client.raw("GET", APIPath.taskLogs(taskID)), as: UTF8.self)
        #expect(log == "hi from dev-agent\n")

        // A task still running when SIGTERM comes is stopped and given back to the queue, no attempt used.
        let long: JobView = try await client.call("POST", APIPath.jobs, json: JobSubmission(name: "long", tasks: [
            TaskSpec(name: "sleeper", command: ["sleep", "300"]),
        ]))
        let sleeper = try #require(long.taskIDs?.first)
        try await eventually("the sleeper runs", timeout: 20) {
            let task: TaskView = try await client.call("GET", APIPath.task(sleeper))
            return task.state == .running
        }
        process.terminate()
        try await eventually("dev exits", timeout: 20) { !process.isRunning }
        #expect(process.terminationStatus == 0)

        let restarted = try Process.run(URL(fileURLWithPath: Farm.binary), arguments: [
            "master", "--listen", "127.0.0.1:\(port)", "--data", farm.dir + "/dev",
            "--join-token", "x", "--admin-token", admin])
        defer { kill(restarted.processIdentifier, SIGKILL) }
        try await eventually("the sleeper is back in the queue", timeout: 20) {
            guard let task: TaskView = try? await client.call("GET", APIPath.task(sleeper)) else { return false }
            return task.state == .queued && task.attempt == 0
        }
    }
}

}

/// A port nobody listens on right now (bind to 0, read it, close).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw FarmError("cannot find a free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}
