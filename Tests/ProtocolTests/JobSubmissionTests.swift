import Foundation
import PaddockProtocol
import Testing

@Suite("JobSubmission decoding")
struct JobSubmissionTests {
    // MARK: what is accepted

    @Test func anExplicitTaskList() throws {
        let job = try Wire.decode(JobSubmission.self, #"""
            {"name": "render", "priority": 5, "labels": {"team": "fx"},
             "tasks": [
               {"name": "a", "command": ["echo", "a"], "env": {"FOO": "1"}, "cwd": "/tmp",
                "requirements": {"cpus": 1.5, "ram": "512MiB", "disk": 1024, "gpus": 1, "tags": ["gpu", "linux", "gpu"]},
                "max_attempts": 5, "timeout": "2h", "priority": 9},
               {"name": "b", "command": ["true"]}
             ]}
            """#)
        #expect(job.name == "render")
        #expect(job.priority == 5)
        #expect(job.labels == ["team": "fx"])
        #expect(job.tasks.count == 2)
        let a = job.tasks[0]
        #expect(a.command == ["echo", "a"])
        #expect(a.env == ["FOO": "1"])
        #expect(a.cwd == "/tmp")
        #expect(a.requirements?.resources == ResourceVector(milliCPUs: 1500, ram: 512 * MiB, disk: 1024, gpus: 1))
        #expect(a.requirements?.tags == ["gpu", "linux"])  // deduplicated, sorted
        #expect(a.maxAttempts == 5)
        #expect(a.timeout == 7200)
        #expect(a.priority == 9)
        let b = job.tasks[1]
        #expect(b.requirements == nil && b.maxAttempts == nil && b.timeout == nil && b.env.isEmpty && b.cwd == nil)
    }

    @Test func requirementsDefaultToOneCPU() throws {
        let bare = try Wire.decode(JobSubmission.self, jobJSON())
        #expect(bare.effectiveRequirements(of: bare.tasks[0]) == .default)
        #expect(TaskRequirements.default.resources == ResourceVector(cpus: 1))

        let empty = try Wire.decode(JobSubmission.self, jobJSON(task: #""requirements": {}"#))
        #expect(empty.tasks[0].requirements == requirements(cpus: 1))

        let zero = try Wire.decode(JobSubmission.self, jobJSON(task: #""requirements": {"cpus": 0, "ram": "1G"}"#))
        #expect(zero.tasks[0].requirements == requirements(cpus: 0, ram: GiB))
    }

    @Test func jobRequirementsAreTheTasksDefault() throws {
        let job = try Wire.decode(JobSubmission.self, #"""
            {"name": "j", "requirements": {"cpus": 3, "tags": ["gpu"]}, "max_attempts": 2, "timeout": 60,
             "tasks": [{"name": "own", "command": ["x"], "requirements": {"cpus": 1}},
                       {"name": "inherits", "command": ["x"]}]}
            """#)
        #expect(job.effectiveRequirements(of: job.tasks[0]) == requirements(cpus: 1))
        #expect(job.effectiveRequirements(of: job.tasks[1]) == requirements(cpus: 3, tags: ["gpu"]))
        #expect(job.maxAttempts == 2)
        #expect(job.timeout == 60)
    }

    @Test func sizesTakeBytesOrUnits() throws {
        let cases: [(String, Int64)] = [("1024", 1024), (#""8GiB""#, 8 * GiB), (#""512MiB""#, 512 * MiB),
                                        (#""100MB""#, 100_000_000), ("0", 0), (#""4096""#, 4096)]
        for (json, bytes) in cases {
            let job = try Wire.decode(JobSubmission.self, jobJSON(task: #""requirements": {"ram": \#(json), "disk": \#(json)}"#))
            #expect(job.tasks[0].requirements?.resources.ram == bytes, "\(json)")
            #expect(job.tasks[0].requirements?.resources.disk == bytes, "\(json)")
        }
    }

    @Test func aFrameRangeTemplate() throws {
        let job = try Wire.decode(JobSubmission.self, #"""
            {"name": "shot", "frames": "1-250", "chunk": 10,
             "command": ["render", "--start", "{start}", "--end", "{end}", "out_{start}-{end}.exr"],
             "env": {"RANGE": "{start}:{end}"}, "cwd": "/work", "requirements": {"cpus": 2}}
            """#)
        #expect(job.tasks.count == 25)
        #expect(job.tasks[0].name == "frames 1-10")
        #expect(job.tasks[0].command == ["render", "--start", "1", "--end", "10", "out_1-10.exr"])
        #expect(job.tasks[0].env == ["RANGE": "1:10"])
        #expect(job.tasks[0].cwd == "/work")
        #expect(job.tasks[24].name == "frames 241-250")
        #expect(job.tasks[24].command == ["render", "--start", "241", "--end", "250", "out_241-250.exr"])
        #expect(Set(job.tasks.map(\.name)).count == 25)
        // Template tasks take the job's requirements.
        #expect(job.tasks.allSatisfy { $0.requirements == nil })
        #expect(job.effectiveRequirements(of: job.tasks[3]) == requirements(cpus: 2))
    }

    @Test func framesDefaultToChunksOfOne() throws {
        let job = try Wire.decode(JobSubmission.self, #"{"name": "j", "frames": "3-5,9", "command": ["r", "{start}"]}"#)
        #expect(job.tasks.map(\.name) == ["frame 3", "frame 4", "frame 5", "frame 9"])
        #expect(job.tasks.map { $0.command[1] } == ["3", "4", "5", "9"])
    }

    @Test func roundTrip() throws {
        let job = try Wire.decode(JobSubmission.self, #"""
            {"name": "render", "owner": "ana", "priority": -3, "labels": {"team": "fx"},
             "requirements": {"cpus": 0.5, "ram": "1GiB"}, "max_attempts": 4, "timeout": "90s",
             "tasks": [{"name": "a", "command": ["echo", "a b"], "env": {"X": "1"}, "cwd": "/tmp",
                        "requirements": {"cpus": 2, "tags": ["a", "b"]}, "max_attempts": 1, "timeout": 5, "priority": 1}]}
            """#)
        let again = try Wire.decode(JobSubmission.self, try Wire.string(job))
        #expect(again == job)
    }

    // MARK: dependencies

    @Test func dependenciesAndJobsAfter() throws {
        let job = try Wire.decode(JobSubmission.self, #"""
            {"name": "comp", "after": ["j3", "4"],
             "tasks": [{"name": "a", "command": ["x"]},
                       {"name": "b", "command": ["x"], "depends_on": ["a"]},
                       {"name": "c", "command": ["x"], "depends_on": ["a", "b", "a"]}]}
            """#)
        #expect(job.after == [JobID(rawValue: 3), JobID(rawValue: 4)])
        #expect(job.tasks.map(\.dependsOn) == [[], ["a"], ["a", "b", "a"]])
        #expect(try DependencyGraph(tasks: job.tasks).prerequisites == [[], [0], [0, 1]])
        // Round trip; empty lists are left out.
        let again = try Wire.decode(JobSubmission.self, try Wire.string(job))
        #expect(again == job && again.after == job.after)
        let plain = try Wire.object(try Wire.decode(JobSubmission.self, jobJSON()))
        #expect(plain["after"] == nil)
        #expect((plain["tasks"] as? [[String: Any]])?.first?["depends_on"] == nil)
    }

    @Test func aDependencyCycleIsRefused() throws {
        let cycle = try #require(Wire.rejection(JobSubmission.self, #"""
            {"name": "j", "tasks": [{"name": "a", "command": ["x"], "depends_on": ["c"]},
                                    {"name": "b", "command": ["x"], "depends_on": ["a"]},
                                    {"name": "c", "command": ["x"], "depends_on": ["b"]}]}
            """#))
        #expect(cycle.status == 400 && cycle.code == "invalid_request")
        #expect(cycle.field == "tasks")
        #expect(cycle.message.contains("cycle"), "\(cycle)")
        let selfLoop = try #require(Wire.rejection(JobSubmission.self, jobJSON(task: #""depends_on": ["t"]"#)))
        #expect(selfLoop.message.contains("cycle"), "\(selfLoop)")
    }

    @Test func unknownOrAmbiguousDependenciesAreRefused() throws {
        let unknown = try #require(Wire.rejection(JobSubmission.self, jobJSON(task: #""depends_on": ["nope"]"#)))
        #expect(unknown.status == 400 && unknown.field == "tasks")
        #expect(unknown.message.contains("'nope'") && unknown.message.contains("no task of this job"), "\(unknown)")
        let ambiguous = try #require(Wire.rejection(JobSubmission.self, #"""
            {"name": "j", "tasks": [{"name": "a", "command": ["x"]}, {"name": "a", "command": ["y"]},
                                    {"name": "b", "command": ["x"], "depends_on": ["a"]}]}
            """#))
        #expect(ambiguous.status == 400 && ambiguous.field == "tasks")
        #expect(ambiguous.message.contains("several tasks share"), "\(ambiguous)")
        // Shared names are fine as long as no task depends on them.
        #expect(try Wire.decode(JobSubmission.self, #"""
            {"name": "j", "tasks": [{"name": "a", "command": ["x"]}, {"name": "a", "command": ["y"]}]}
            """#).tasks.count == 2)
    }

    @Test func dependencyListsAreBounded() throws {
        let names = (0...1000).map { #""d\#($0)""# }.joined(separator: ", ")
        let many = try #require(Wire.rejection(JobSubmission.self, jobJSON(task: #""depends_on": [\#(names)]"#)))
        #expect(many.field == "tasks[0].depends_on")
        let jobs = (1...1001).map { #""j\#($0)""# }.joined(separator: ", ")
        let after = try #require(Wire.rejection(JobSubmission.self, jobJSON(job: #""after": [\#(jobs)]"#)))
        #expect(after.field == "after")
        let bad = try #require(Wire.rejection(JobSubmission.self, jobJSON(job: #""after": ["t3"]"#)))
        #expect(bad.status == 400)
        #expect(bad.field?.hasPrefix("after") == true, "\(bad)")
    }

    // MARK: what is refused, and how it is said

    @Test(arguments: [#"{"name": "j", "tasks": ["#, "", "hello", #"{"name": "j" "tasks": []}"#, "{'name': 'j'}", "\u{FF}"])
    func malformedJSON(_ body: String) throws {
        let error = try #require(Wire.rejection(JobSubmission.self, body))
        #expect(error.code == "malformed_json")
        #expect(error.status == 400)
        #expect(error.field == nil)
    }

    @Test func notAnObject() throws {
        let error = try #require(Wire.rejection(JobSubmission.self, "[1, 2]"))
        #expect(error.status == 400)
        #expect(error.code == "invalid_request")
    }

    /// Each bad body is refused with a 400 naming the offending field.
    static let refusals: [(String, String)] = [
        // argv
        (jobJSON(task: "").replacingOccurrences(of: #"["echo", "hi"]"#, with: "[]"), "tasks[0].command"),
        (jobJSON(task: "").replacingOccurrences(of: #"["echo", "hi"]"#, with: #"[""]"#), "tasks[0].command"),
        (jobJSON(task: "").replacingOccurrences(of: #"["echo", "hi"]"#, with: #""echo hi""#), "tasks[0].command"),
        (jobJSON(task: "").replacingOccurrences(of: #"["echo", "hi"]"#, with: #"["echo", "a\u0000b"]"#), "tasks[0].command"),
        (jobJSON(task: "").replacingOccurrences(of: #""command": ["echo", "hi"]"#, with: #""cmd": ["x"]"#), "tasks[0].cmd"),
        // cpus
        (jobJSON(task: #""requirements": {"cpus": -1}"#), "tasks[0].requirements.cpus"),
        (jobJSON(task: #""requirements": {"cpus": -0.001}"#), "tasks[0].requirements.cpus"),
        (jobJSON(task: #""requirements": {"cpus": "NaN"}"#), "tasks[0].requirements.cpus"),
        (jobJSON(task: #""requirements": {"cpus": "nan"}"#), "tasks[0].requirements.cpus"),
        (jobJSON(task: #""requirements": {"cpus": "Infinity"}"#), "tasks[0].requirements.cpus"),
        (jobJSON(task: #""requirements": {"cpus": "4"}"#), "tasks[0].requirements.cpus"),
        (jobJSON(task: #""requirements": {"cpus": 65537}"#), "tasks[0].requirements.cpus"),
        (jobJSON(task: #""requirements": {"cpus": true}"#), "tasks[0].requirements.cpus"),
        // unknown fields
        (jobJSON(task: #""requirements": {"cpus": 1, "cpu": 4}"#), "tasks[0].requirements.cpu"),
        (jobJSON(task: #""requirements": {"memory": "8GiB"}"#), "tasks[0].requirements.memory"),
        (jobJSON(task: #""retries": 3"#), "tasks[0].retries"),
        (jobJSON(job: #""nmae": "typo""#), "nmae"),
        (jobJSON(job: #""requirements": {"gpu": 1}"#), "requirements.gpu"),
        // sizes and gpus
        (jobJSON(task: #""requirements": {"ram": -1}"#), "tasks[0].requirements.ram"),
        (jobJSON(task: #""requirements": {"ram": 1.5}"#), "tasks[0].requirements.ram"),
        (jobJSON(task: #""requirements": {"ram": "lots"}"#), "tasks[0].requirements.ram"),
        (jobJSON(task: #""requirements": {"ram": "-8GiB"}"#), "tasks[0].requirements.ram"),
        (jobJSON(task: #""requirements": {"ram": "2PiB"}"#), "tasks[0].requirements.ram"),
        (jobJSON(task: #""requirements": {"ram": 1125899906842625}"#), "tasks[0].requirements.ram"),
        (jobJSON(task: #""requirements": {"ram": null}"#), "tasks[0].requirements.ram"),
        (jobJSON(task: #""requirements": {"disk": "8XB"}"#), "tasks[0].requirements.disk"),
        (jobJSON(task: #""requirements": {"gpus": -1}"#), "tasks[0].requirements.gpus"),
        (jobJSON(task: #""requirements": {"gpus": 1.5}"#), "tasks[0].requirements.gpus"),
        (jobJSON(task: #""requirements": {"gpus": 1025}"#), "tasks[0].requirements.gpus"),
        // tags
        (jobJSON(task: #""requirements": {"tags": ["has space"]}"#), "tasks[0].requirements.tags"),
        (jobJSON(task: #""requirements": {"tags": [""]}"#), "tasks[0].requirements.tags"),
        (jobJSON(task: #""requirements": {"tags": "gpu"}"#), "tasks[0].requirements.tags"),
        // other task fields
        (jobJSON(task: #""env": {"1BAD": "x"}"#), "tasks[0].env"),
        (jobJSON(task: #""env": {"A-B": "x"}"#), "tasks[0].env"),
        (jobJSON(task: #""env": {"OK": "a\u0000b"}"#), "tasks[0].env"),
        (jobJSON(task: #""cwd": "relative/dir""#), "tasks[0].cwd"),
        (jobJSON(task: #""max_attempts": 0"#), "tasks[0].max_attempts"),
        (jobJSON(task: #""max_attempts": 101"#), "tasks[0].max_attempts"),
        (jobJSON(task: #""timeout": 0"#), "tasks[0].timeout"),
        (jobJSON(task: #""timeout": -5"#), "tasks[0].timeout"),
        (jobJSON(task: #""timeout": "0s""#), "tasks[0].timeout"),
        (jobJSON(task: #""timeout": "31d""#), "tasks[0].timeout"),
        (jobJSON(task: #""timeout": "soon""#), "tasks[0].timeout"),
        (jobJSON(task: #""timeout": true"#), "tasks[0].timeout"),
        (jobJSON(task: #""priority": 1000001"#), "tasks[0].priority"),
        (jobJSON(task: "").replacingOccurrences(of: #""name": "t""#, with: #""name": """#), "tasks[0].name"),
        (jobJSON(task: "").replacingOccurrences(of: #""name": "t""#, with: #""name": "a\nb""#), "tasks[0].name"),
        (jobJSON(task: "").replacingOccurrences(of: #""name": "t", "#, with: ""), "tasks[0].name"),
        // job fields
        (jobJSON().replacingOccurrences(of: #""name": "j""#, with: #""name": "\#(String(repeating: "x", count: 257))""#), "name"),
        (jobJSON().replacingOccurrences(of: #""name": "j", "#, with: ""), "name"),
        (jobJSON(job: #""owner": "a b""#), "owner"),
        (jobJSON(job: #""priority": -1000001"#), "priority"),
        (jobJSON(job: #""priority": 1.5"#), "priority"),
        (jobJSON(job: #""max_attempts": 2.5"#), "max_attempts"),
        (jobJSON(job: #""max_attempts": "3""#), "max_attempts"),
        (jobJSON(task: #""priority": 1e30"#), "tasks[0].priority"),
        (jobJSON(job: #""labels": {"bad key": "x"}"#), "labels"),
        (jobJSON(job: #""labels": {"k": 1}"#), "labels.k"),
        (jobJSON(job: #""after": "j1""#), "after"),
        (jobJSON(task: #""depends_on": "t""#), "tasks[0].depends_on"),
        (jobJSON(task: #""depends_on": ["nope"]"#), "tasks"),
        (jobJSON(task: #""depends_on": ["t"]"#), "tasks"),
        (jobJSON(task: #""after": ["j1"]"#), "tasks[0].after"),
        // the shape of the job
        (#"{"name": "j", "tasks": []}"#, "tasks"),
        (#"{"name": "j"}"#, "tasks"),
        (#"{"name": "j", "tasks": [{"name": "t", "command": ["x"]}], "frames": "1-10", "command": ["x"]}"#, "frames"),
        (#"{"name": "j", "tasks": [{"name": "t", "command": ["x"]}], "command": ["x"]}"#, "command"),
        (#"{"name": "j", "tasks": [{"name": "t", "command": ["x"]}], "chunk": 2}"#, "chunk"),
        (#"{"name": "j", "tasks": {"name": "t", "command": ["x"]}}"#, "tasks"),
        (#"{"name": "j", "tasks": [{"name": "a", "command": ["x"]}, {"name": "b", "command": []}]}"#, "tasks[1].command"),
        // frames templates
        (#"{"name": "j", "frames": "5-1", "command": ["x"]}"#, "frames"),
        (#"{"name": "j", "frames": "a-b", "command": ["x"]}"#, "frames"),
        (#"{"name": "j", "frames": 10, "command": ["x"]}"#, "frames"),
        (#"{"name": "j", "frames": "1-10"}"#, "command"),
        (#"{"name": "j", "frames": "1-10", "command": []}"#, "command"),
        (#"{"name": "j", "frames": "1-10", "command": ["x"], "chunk": 0}"#, "chunk"),
        (#"{"name": "j", "frames": "1-10", "command": ["x"], "chunk": -3}"#, "chunk"),
        (#"{"name": "j", "frames": "1-10", "command": ["x"], "chunk": 2.5}"#, "chunk"),
        (#"{"name": "j", "frames": "1-10", "command": ["x"], "cwd": "rel"}"#, "cwd"),
        (#"{"name": "j", "frames": "1-100001", "command": ["x"]}"#, "frames"),
    ]

    @Test(arguments: refusals)
    func refused(_ body: String, _ field: String) throws {
        let error = try #require(Wire.rejection(JobSubmission.self, body))
        #expect(error.status == 400)
        #expect(error.code == "invalid_request", "\(error)")
        #expect(error.field == field, "\(error) for \(body.prefix(160))")
        #expect(!error.message.isEmpty)
    }

    @Test func messagesSayWhatIsWrong() throws {
        let unknown = try #require(Wire.rejection(JobSubmission.self, jobJSON(task: #""requirements": {"cpu": 4}"#)))
        #expect(unknown.message.contains("unknown field 'cpu'"))
        #expect(unknown.description.contains("tasks[0].requirements.cpu"))

        let negative = try #require(Wire.rejection(JobSubmission.self, jobJSON(task: #""requirements": {"cpus": -1}"#)))
        #expect(negative.message.contains("cpus"))

        let missing = try #require(Wire.rejection(JobSubmission.self, #"{"tasks": [{"name": "t", "command": ["x"]}]}"#))
        #expect(missing.message.contains("missing field 'name'"))

        let neither = try #require(Wire.rejection(JobSubmission.self, #"{"name": "j"}"#))
        #expect(neither.message.contains("frames"))

        let both = try #require(Wire.rejection(JobSubmission.self,
            #"{"name": "j", "tasks": [{"name": "t", "command": ["x"]}], "frames": "1-2", "command": ["x"]}"#))
        #expect(both.message.contains("not both"))

        let nan = try #require(Wire.rejection(JobSubmission.self, jobJSON(task: #""requirements": {"cpus": "NaN"}"#)))
        #expect(nan.message.contains("cpus: expected a number"), "\(nan.message)")
    }

    @Test func tooManyTasksInAList() throws {
        let one = #"{"name":"t","command":["x"]}"#
        let list: String = Array(repeating: one, count: Limits.tasksPerJob + 1).joined(separator: ",")
        let body = #"{"name":"j","tasks":["# + list + "]}"
        let error = try #require(Wire.rejection(JobSubmission.self, body))
        #expect(error.field == "tasks")
        #expect(error.message.contains("\(Limits.tasksPerJob)"))
    }

    @Test func exactlyTheTaskLimitFromFrames() throws {
        let job = try Wire.decode(JobSubmission.self, #"{"name": "j", "frames": "1-100000", "command": ["x", "{start}"]}"#)
        #expect(job.tasks.count == Limits.tasksPerJob)
    }

    @Test func describeOnSomethingElse() {
        struct Boom: Error {}
        let error = WireJSON.describe(Boom())
        #expect(error.code == "malformed_json")
        #expect(error.status == 400)
    }
}
