import Foundation
import Hummingbird
import HummingbirdTesting
import PaddockProtocol
import Testing

/// The web dashboard's files (issue 17): served at `/` without a token, with strong ETags,
/// 304 on `If-None-Match`, cacheable versioned URLs, and no secret in them.
@Suite struct DashboardTests {
    @Test func thePageIsServedWithoutATokenWithAStrongETag() async throws {
        try await TestMaster().test { client in
            let page = try await client.send(.get, "/", token: nil)
            #expect(page.status == 200)
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            let etag = try #require(page.headers[.eTag])
            #expect(etag.hasPrefix("\"") && etag.hasSuffix("\"") && !etag.hasPrefix("W/"), "a strong ETag: \(etag)")
            #expect(page.headers[.cacheControl] == "no-cache")
            #expect(page.headers[HTTPFields.Element.Name("Content-Security-Policy")!]?.contains("script-src 'self'") == true)
            let html = String(decoding: page.body, as: UTF8.self)
            #expect(html.contains("<title>Paddock</title>"))
            #expect(!html.contains("{{"), "every placeholder is filled")

            let again = try await client.send(.get, "/", token: nil, headers: [.ifNoneMatch: etag])
            #expect(again.status == 304)
            #expect(again.body.isEmpty)
            #expect(again.headers[.eTag] == etag)
            let listed = try await client.send(.get, "/", token: nil, headers: [.ifNoneMatch: "\"other\", \(etag)"])
            #expect(listed.status == 304)
            let stale = try await client.send(.get, "/", token: nil, headers: [.ifNoneMatch: "\"0000000000000000\""])
            #expect(stale.status == 200 && !stale.body.isEmpty)
        }
    }

    @Test func assetsHaveTheirTypesAndVersionedURLsAreImmutable() async throws {
        try await TestMaster().test { client in
            let html = String(decoding: try await client.send(.get, "/", token: nil).body, as: UTF8.self)
            for (name, type) in [("app.js", "text/javascript; charset=utf-8"), ("app.css", "text/css; charset=utf-8"),
                                 ("icon.svg", "image/svg+xml")] {
                // Relative (`ui/...`): the page works under a frontend's path prefix too.
                let reference = try #require(Self.reference(to: "ui/\(name)?v=", in: html), "the page names \(name)")
                let url = "/" + reference
                let asset = try await client.send(.get, url, token: nil)
                #expect(asset.status == 200, "\(url)")
                #expect(asset.headers[.contentType] == type)
                #expect(asset.headers[.cacheControl] == "public, max-age=31536000, immutable")
                let etag = try #require(asset.headers[.eTag])
                #expect(url.hasSuffix("?v=" + etag.trimmingCharacters(in: CharacterSet(charactersIn: "\""))))
                let revalidated = try await client.send(.get, url, token: nil, headers: [.ifNoneMatch: etag])
                #expect(revalidated.status == 304)
                // Without the current version the file is served, but must be revalidated.
                let unversioned = try await client.send(.get, "/ui/\(name)", token: nil)
                #expect(unversioned.status == 200 && unversioned.headers[.cacheControl] == "no-cache")
            }
            let head = try await client.send(.head, "/", token: nil)
            #expect(head.status == 200 && head.body.isEmpty)
        }
    }

    @Test func theFilesHoldNoTokenAndTheAPIStillNeedsOne() async throws {
        try await TestMaster().test { client in
            let html = String(decoding: try await client.send(.get, "/", token: nil).body, as: UTF8.self)
            var texts = [html]
            for name in ["app.js", "app.css", "icon.svg"] {
                texts.append(String(decoding: try await client.send(.get, "/ui/\(name)", token: nil).body, as: UTF8.self))
            }
            for text in texts {
                #expect(!text.contains(TestMaster.admin) && !text.contains(TestMaster.join), "a served file holds a token")
                #expect(!text.contains("localStorage"), "the token is kept for the tab only (sessionStorage)")
            }
            // Asking with a token changes nothing in what is served.
            let withToken = try await client.send(.get, "/", token: TestMaster.admin)
            #expect(String(decoding: withToken.body, as: UTF8.self) == html)
            // Only the dashboard's own files are open: the API and unknown paths under /ui/ are not.
            #expect(try await client.send(.get, "/v1/jobs", token: nil).status == 401)
            #expect(try await client.send(.get, "/ui/secret.json", token: nil).status == 401)
            #expect(try await client.send(.get, "/ui/secret.json").status == 404)
            #expect(try await client.send(.post, "/", token: nil).status == 401)
        }
    }

    @Test func theGraphOfAJobAndTheThroughputOfTheFarm() async throws {
        try await TestMaster().test { client in
            let (agent, credential) = try await client.enroll("dash")
            let job = try await client.submit(JobSubmission(name: "diamond", tasks: [
                TaskSpec(name: "a", command: ["true"]),
                TaskSpec(name: "b", command: ["true"], dependsOn: ["a"]),
                TaskSpec(name: "c", command: ["true"], dependsOn: ["a"]),
                TaskSpec(name: "d", command: ["true"], dependsOn: ["b", "c"]),
            ]))
            let ids = try #require(job.taskIDs)
            let reply = try await client.send(.get, "/v1/jobs/\(job.id)/graph")
            #expect(reply.status == 200)
            let graph = try reply.decode(JobGraph.self)
            #expect(graph.edges == [[ids[0], ids[1]], [ids[0], ids[2]], [ids[1], ids[3]], [ids[2], ids[3]]])
            #expect(graph.after.isEmpty && !graph.truncated)
            var after = JobSubmission(name: "later", tasks: [TaskSpec(name: "x", command: ["true"])])
            after.after = [job.id]
            let later = try await client.submit(after)
            #expect(try await client.send(.get, "/v1/jobs/\(later.id)/graph").decode(JobGraph.self).after == [job.id])
            #expect(try await client.send(.get, "/v1/jobs/j999/graph").status == 404)
            #expect(try await client.send(.get, "/v1/jobs/\(job.id)/graph", token: nil).status == 401)
            #expect(try await client.send(.get, "/v1/jobs/\(job.id)/graph", token: credential).status == 403)

            // One run succeeds: the current minute (the last bucket) counts it.
            let empty = try await client.send(.get, "/v1/throughput").decode(Throughput.self)
            #expect(empty.succeeded.count == 60 && empty.failed.count == 60 && empty.bucketSeconds == 60)
            #expect(empty.succeeded.reduce(0, +) == 0)
            let lease = try #require(try await client.claim(agent, credential).first)
            #expect(lease.task == ids[0])
            #expect(try await client.send(.post, "/v1/tasks/\(lease.task)/start", token: credential,
                                          json: TaskReport(epoch: lease.epoch)).status == 200)
            #expect(try await client.send(.post, "/v1/tasks/\(lease.task)/finish", token: credential,
                                          json: FinishReport(epoch: lease.epoch, outcome: .succeeded, exitCode: 0)).status == 200)
            let counted = try await client.send(.get, "/v1/throughput").decode(Throughput.self)
            #expect(counted.succeeded.reduce(0, +) == 1 && counted.failed.reduce(0, +) == 0)
            #expect(counted.succeeded.last == 1 || counted.succeeded.suffix(2).reduce(0, +) == 1, "the latest minute")
            #expect(Date().timeIntervalSince(counted.since) <= 3600 && Date().timeIntervalSince(counted.since) > 3540)
            #expect(try await client.send(.get, "/v1/throughput", token: nil).status == 401)
        }
    }

    /// The first `"PREFIX...` attribute value in `html` (up to the closing quote).
    static func reference(to prefix: String, in html: String) -> String? {
        guard let start = html.range(of: "\"" + prefix) else { return nil }
        let rest = html[start.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        return prefix + rest[..<end]
    }
}
