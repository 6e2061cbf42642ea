import Foundation
import PaddockClient
import PaddockProtocol
import PaddockTestSupport
import Testing

/// The per-client token bucket (issue 16), against a real master and real agents.
extension EndToEnd { @Suite struct RateLimitTests {
    @Test func aBurstPastTheBucketIsAnswered429WithRetryAfter() async throws {
        let farm = try Farm()
        try await farm.startMaster(["--rate-limit", "1/5"])
        let port = farm.port
        let answers = try await offThePool { () -> [(status: Int, headers: [String: String], body: String)] in
            let connection = try RawConnection(port: port)
            var answers: [(status: Int, headers: [String: String], body: String)] = []
            for _ in 0..<12 {
                try connection.write("GET /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(Farm.admin)\r\n\r\n")
                answers.append(try connection.readResponse(timeout: 30))
            }
            return answers
        }
        #expect(answers.first?.status == 200)
        let refused = answers.filter { $0.status == 429 }
        #expect(refused.count >= 4, "\(answers.map(\.status))")
        #expect(answers.allSatisfy { $0.status == 200 || $0.status == 429 }, "\(answers.map(\.status))")
        for answer in refused {
            let seconds = try #require(answer.headers["retry-after"].flatMap(Int.init), "\(answer.headers)")
            #expect(seconds >= 1)
            let error = try WireJSON.decoder().decode(PaddockError.self, from: Data(answer.body.utf8))
            #expect(error.code == "rate_limited", "\(answer.body)")
        }

        // Buckets are per client: another token and the same address without a token have their own.
        let joiner = try await offThePool {
            let connection = try RawConnection(port: port)
            try connection.write("GET /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(Farm.join)\r\n\r\n")
            return try connection.readResponse(timeout: 30).status
        }
        #expect(joiner == 403)
        #expect((try? await MasterClient(baseURL: try #require(URL(string: farm.url)), token: "").raw("GET", "/healthz")) != nil)

        // The bucket fills again: the admin token is served once more (at 1/s, within seconds).
        try await eventually("the admin token is served again", timeout: 30) {
            (try? await farm.admin.call("GET", APIPath.jobs, as: Page<JobView>.self)) != nil
        }
        let metrics = String(decoding: try await MasterClient(baseURL: try #require(URL(string: farm.url)), token: "")
            .raw("GET", "/metrics"), as: UTF8.self)
        // Counted: those above, and any the wait for a refill met.
        let counted = metrics.split(separator: "\n").first { $0.hasPrefix("paddock_rate_limited_total ") }
            .flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }
        #expect(counted.map { Int($0) >= refused.count } == true, "\(metrics)")
    }

    /// The default figures never meet a farm at work: agents' heartbeats, exchanges and long-polls,
    /// and a user submitting and polling fast, with not one request refused.
    @Test func anAgentFarmAtWorkIsUntouchedByTheDefaultLimits() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("one", ["--cpus", "4", "--slots", "4"])
        try farm.startAgent("two", ["--cpus", "4", "--slots", "4"])
        let admin = farm.admin
        let singles = 120
        var jobs: [JobID] = []
        try await withThrowingTaskGroup(of: JobID.self) { group in
            for index in 0..<singles {
                if index >= 8, let id = try await group.next() { jobs.append(id) }
                group.addTask {
                    let job: JobView = try await admin.call("POST", APIPath.jobs,
                                                            json: JobSubmission(name: "s\(index)", tasks: [shell("true")]))
                    return job.id
                }
            }
            for try await id in group { jobs.append(id) }
        }
        let bulk = try await farm.submitRaw(#"{"name":"bulk","frames":"1-300","chunk":1,"command":["true"]}"#)
        try await eventually("every task succeeded", timeout: 300) {
            let info: MasterInfo = try await admin.call("GET", APIPath.master)
            return info.tasks[.succeeded] == singles + 300
        }
        let metrics = String(decoding: try await MasterClient(baseURL: try #require(URL(string: farm.url)), token: "")
            .raw("GET", "/metrics"), as: UTF8.self)
        #expect(metrics.contains("paddock_rate_limited_total 0"), "\(metrics)")
        #expect(jobs.count == singles && bulk.counts.total == 300)
    }
} }
