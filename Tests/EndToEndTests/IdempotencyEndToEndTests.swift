import Foundation
import PaddockClient
import PaddockProtocol
import Testing

/// Idempotent submission (issue: security): a replayed submission makes one job, and `paddock submit`
/// retries through a master that is away without making two.
extension EndToEnd { @Suite struct IdempotencyEndToEndTests {
    @Test func aReplayedSubmissionWithTheSameKeyMakesOneJob() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        let body = try WireJSON.encoder().encode(JobSubmission(name: "once", tasks: [shell("echo once")]))
        let headers = ["Idempotency-Key": UUID().uuidString]
        let first = try WireJSON.decoder().decode(JobView.self, from: try await farm.admin.raw(
            "POST", APIPath.jobs, body: body, contentType: "application/json", headers: headers))
        let second = try WireJSON.decoder().decode(JobView.self, from: try await farm.admin.raw(
            "POST", APIPath.jobs, body: body, contentType: "application/json", headers: headers))
        #expect(second.id == first.id)
        let other = try WireJSON.encoder().encode(JobSubmission(name: "other", tasks: [shell("echo other")]))
        do {
            _ = try await farm.admin.raw("POST", APIPath.jobs, body: other, contentType: "application/json", headers: headers)
            Issue.record("another body under a used key was accepted")
        } catch {
            #expect(error.status == 422)
        }
        let page: Page<JobView> = try await farm.admin.call("GET", APIPath.jobs)
        #expect(page.items.map(\.id) == [first.id])
        do {
            _ = try await farm.admin.raw("POST", APIPath.jobs, body: body, contentType: "application/json",
                                         headers: ["Idempotency-Key": "has space"])
            Issue.record("a key with a space was accepted")
        } catch {
            #expect(error.status == 400)
        }
    }

    @Test func theCLIRetriesASubmissionUntilTheMasterIsBack() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        farm.kill9("master")
        let file = farm.dir + "/job.yaml"
        try "name: patient\ntasks:\n  - name: a\n    command: [\"true\"]\n".write(toFile: file, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Farm.binary)
        process.arguments = ["submit", file]
        var environment = ProcessInfo.processInfo.environment
        environment["PADDOCK_MASTER"] = farm.url
        environment["PADDOCK_TOKEN"] = Farm.admin
        process.environment = environment
        let output = Pipe()
        let errorsPath = farm.dir + "/submit-errors.log"
        _ = FileManager.default.createFile(atPath: errorsPath, contents: nil)
        process.standardOutput = output
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errorsPath))
        try process.run()
        // It says it retries while nobody answers; then the master comes back.
        _ = try await farm.waitForLine(in: errorsPath, containing: "retrying the submission")
        try await farm.startMaster()
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let complained = (try? String(contentsOfFile: errorsPath, encoding: .utf8)) ?? ""
        #expect(process.terminationStatus == 0, "\(said) \(complained)")
        #expect(said.contains("submitted job"))
        #expect(complained.contains("retrying the submission"))
        let page: Page<JobView> = try await farm.admin.call("GET", APIPath.jobs)
        #expect(page.items.map(\.name) == ["patient"])
    }
} }
