import Foundation
import PaddockProtocol
import Testing

/// The dashboard's two reads (issue 17) in openapi.yaml: their schemas say what the types encode.
@Suite("OpenAPI document: the dashboard's reads")
struct OpenAPIDashboardTests {
    let doc = OpenAPIOutline(OpenAPIDocument.yaml)

    @Test func graphAndThroughputSchemasMatchWhatIsEncoded() throws {
        let graph = JobGraph(edges: [[TaskID(rawValue: 1), TaskID(rawValue: 2)]], after: [JobID(rawValue: 3)], truncated: false)
        let graphKeys = Set(try Wire.object(graph).keys)
        #expect(doc.properties("JobGraph") == graphKeys)
        #expect(Set(try #require(doc.list("required", of: "JobGraph"))) == graphKeys)
        #expect(try Wire.string(graph) == #"{"after":["j3"],"edges":[["t1","t2"]],"truncated":false}"#)

        let throughput = Throughput(since: Date(timeIntervalSince1970: 0), bucketSeconds: 60, succeeded: [1], failed: [0])
        let throughputKeys = Set(try Wire.object(throughput).keys)
        #expect(doc.properties("Throughput") == throughputKeys)
        #expect(Set(try #require(doc.list("required", of: "Throughput"))) == throughputKeys)

        let changesKeys = Set(try Wire.object(ChangesView(version: "a.1")).keys)
        #expect(doc.properties("Changes") == changesKeys)
        #expect(Set(try #require(doc.list("required", of: "Changes"))) == changesKeys)
        #expect(try Wire.decode(ChangesView.self, #"{"version": "a.1"}"#).version == "a.1")
    }

    @Test func theDescriptionNamesTheDashboard() {
        let intro = doc.info
        #expect(intro.contains("`/`") && intro.contains("`GET /v1/jobs/{id}/graph`") && intro.contains("`GET /v1/throughput`"))
    }
}
