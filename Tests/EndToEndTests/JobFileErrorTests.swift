import Foundation
import PaddockProtocol
import PaddockTestSupport
import Testing

/// A job file with a mistake, through the CLI against a real master: the message names the file,
/// the line and column, the field's path and what to do; the exit status is 1 and no usage banner
/// follows (issue 19: errors written for people).
extension EndToEnd { @Suite struct JobFileErrorTests {
    /// Runs `paddock submit FILE [EXTRA...]`; returns its exit status and standard error.
    static func submit(_ farm: Farm, _ file: String, _ extra: [String] = []) async throws -> (status: Int32, stderr: String) {
        let url = farm.url
        return try await offThePool { () throws -> (Int32, String) in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Farm.binary)
            process.arguments = ["submit", file] + extra
            var environment = ProcessInfo.processInfo.environment
            environment["PADDOCK_MASTER"] = url
            environment["PADDOCK_TOKEN"] = Farm.admin
            process.environment = environment
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let data = errors.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }
    }

    @Test func mistakesInAJobFileAreSaidWithTheirLineColumnAndFix() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        let cases: [(name: String, text: String, expected: String)] = [
            ("typo.yaml", "name: j\ntasks:\n  - name: a\n    comand: [\"true\"]\n",
             "typo.yaml:4:5: tasks[0]: unknown field 'comand' (did you mean 'command'?)"),
            ("string.yaml", "name: j\ntasks:\n  - name: a\n    command: echo hi\n",
             "string.yaml:4:5: tasks[0].command: expected a list, found a string; write the command as a list of arguments"),
            ("nested.yaml", "name: j\ntasks:\n  - name: a\n    command: [\"true\"]\n    requirements:\n      cpu: 2\n",
             "nested.yaml:6:7: tasks[0].requirements: unknown field 'cpu' (did you mean 'cpus'?)"),
            ("broken.yaml", "name: j\ntasks:\n  - name: a\n    command: [\n", "broken.yaml:5:1:"),
        ]
        for (name, text, expected) in cases {
            let file = farm.dir + "/" + name
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            let (status, stderr) = try await Self.submit(farm, file)
            #expect(status == 1, "\(name): exit \(status): \(stderr)")
            #expect(stderr.contains(expected), "\(name): \(stderr)")
            #expect(!stderr.contains("Usage:"), "\(name): a file's mistake is no misuse of the command: \(stderr)")
        }
        let missing = try await Self.submit(farm, farm.dir + "/none.yaml")
        #expect(missing.status == 1 && missing.stderr.contains("cannot read") && !missing.stderr.contains("Usage:"),
                "\(missing)")
        // Nothing was stored from any of them.
        let page: Page<JobView> = try await farm.admin.call("GET", APIPath.jobs)
        #expect(page.items.isEmpty)
    }
} }
