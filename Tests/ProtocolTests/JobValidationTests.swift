import Foundation
@testable import PaddockProtocol
import Testing

/// The validation step on its own: values built in code (no JSON), each rule, the path it names,
/// frame expansion and its bound, the dependency graph.
@Suite struct JobValidationTests {
    static func task(_ name: String = "t", _ change: (inout TaskSpec) -> Void = { _ in }) -> TaskSpec {
        var task = TaskSpec(name: name, command: ["echo", "hi"])
        change(&task)
        return task
    }

    static func job(_ tasks: [TaskSpec] = [task()], _ change: (inout WrittenJob) -> Void = { _ in }) -> WrittenJob {
        var job = WrittenJob(JobSubmission(name: "j", tasks: tasks))
        change(&job)
        return job
    }

    static func template(frames: String, chunk: Int = 1, command: [String] = ["r", "{start}", "{end}"],
                         env: [String: String] = [:], cwd: String? = nil) throws -> WrittenJob {
        let range = try #require(FrameRange(frames))
        return job { $0.work = .frames(FrameTemplate(frames: range, chunk: chunk, command: command, env: env, cwd: cwd)) }
    }

    /// The rule `job` breaks; records an issue when it passes.
    static func broken(_ job: WrittenJob, sourceLocation: SourceLocation = #_sourceLocation) -> BrokenRule? {
        do {
            _ = try job.validated()
            Issue.record("expected a broken rule", sourceLocation: sourceLocation)
            return nil
        } catch {
            return error
        }
    }

    @Test func aValidJobKeepsItsTasksAndTheirGraph() throws {
        let validated = try Self.job([Self.task("a"), Self.task("b") { $0.dependsOn = ["a"] }]) {
            $0.priority = 4
            $0.after = [JobID(rawValue: 2)]
        }.validated()
        #expect(validated.submission.tasks.map(\.name) == ["a", "b"])
        #expect(validated.submission.priority == 4 && validated.submission.after == [JobID(rawValue: 2)])
        #expect(validated.graph.prerequisites == [[], [0]])
        // Unset, the job's priority is 0.
        #expect(try Self.job().validated().submission.priority == 0)
    }

    /// Each rule of a task, and the path its error names.
    static let taskRules: [(String, @Sendable (inout TaskSpec) -> Void, String)] = [
        ("tasks[1].name", { $0.name = "" }, "name must be 1 to"),
        ("tasks[1].name", { $0.name = "a\nb" }, "on one line"),
        ("tasks[1].command", { $0.command = [] }, "a program first"),
        ("tasks[1].command", { $0.command = [""] }, "a program first"),
        ("tasks[1].command", { $0.command = ["x", "a\0b"] }, "no NUL"),
        ("tasks[1].command", { $0.command = Array(repeating: "x", count: Limits.argvCount + 1) }, "at most"),
        ("tasks[1].env", { $0.env = ["1BAD": "x"] }, "env maps names"),
        ("tasks[1].env", { $0.env = ["A-B": "x"] }, "env maps names"),
        ("tasks[1].cwd", { $0.cwd = "relative" }, "cwd must be an absolute path"),
        ("tasks[1].max_attempts", { $0.maxAttempts = 0 }, "between 1 and \(Limits.maxAttempts)"),
        ("tasks[1].max_attempts", { $0.maxAttempts = Limits.maxAttempts + 1 }, "between 1 and"),
        ("tasks[1].timeout", { $0.timeout = 0 }, "positive duration"),
        ("tasks[1].timeout", { $0.timeout = DurationText.maximumSeconds + 1 }, "≤ 30 days"),
        ("tasks[1].timeout", { $0.timeout = .nan }, "positive duration"),
        ("tasks[1].priority", { $0.priority = Limits.priorityRange.upperBound + 1 }, "priority must be between"),
        ("tasks[1].depends_on", { $0.dependsOn = Array(repeating: "t", count: 1001) }, "at most 1000 dependencies"),
        ("tasks[1].parameters", { $0.parameters = ["": "x"] }, "parameters maps"),
        ("tasks[1].parameters", { $0.parameters = ["F": String(repeating: "x", count: Limits.taskParameterValue + 1)] }, "parameters maps"),
    ]

    @Test(arguments: taskRules.indices)
    func aTaskRuleNamesTheTasksField(_ index: Int) throws {
        let (field, change, rule) = Self.taskRules[index]
        let broken = try #require(Self.broken(Self.job([Self.task("a"), Self.task("b", change)])))
        #expect(broken.field == field)
        #expect(broken.rule.contains(rule), "\(broken)")
        #expect(!broken.isTooLarge)
        #expect(broken.refusal == .invalid("\(field): \(broken.rule)", field: field))
    }

    @Test func aTaskOnItsOwnNamesItsFieldsFromItself() {
        #expect(throws: BrokenRule(field: "cwd", rule: "cwd must be an absolute path")) {
            try Self.task { $0.cwd = "rel" }.validate()
        }
    }

    /// Each rule of the job's own fields.
    static let jobRules: [(String, @Sendable (inout WrittenJob) -> Void, String)] = [
        ("name", { $0.name = String(repeating: "x", count: Limits.nameLength + 1) }, "name must be 1 to"),
        ("owner", { $0.owner = "a b" }, "owner must be letters"),
        ("priority", { $0.priority = Limits.priorityRange.lowerBound - 1 }, "priority must be between"),
        ("labels", { $0.labels = ["bad key": "x"] }, "labels; keys of letters"),
        ("labels", { $0.labels = Dictionary(uniqueKeysWithValues: (0...Limits.labelCount).map { ("k\($0)", "v") }) }, "at most"),
        ("max_attempts", { $0.maxAttempts = 0 }, "max_attempts must be between"),
        ("timeout", { $0.timeout = -1 }, "positive duration"),
        ("progress_regex", { $0.progressRegex = "no group" }, "one capture group"),
        ("after", { $0.after = (1...1001).map { JobID(rawValue: Int64($0)) } }, "at most 1000 jobs"),
        ("tasks", { $0.work = .tasks([]) }, "between 1 and \(Limits.tasksPerJob) tasks"),
    ]

    @Test(arguments: jobRules.indices)
    func aJobRuleNamesItsField(_ index: Int) throws {
        let (field, change, rule) = Self.jobRules[index]
        let broken = try #require(Self.broken(Self.job([Self.task()], change)))
        #expect(broken.field == field)
        #expect(broken.rule.contains(rule), "\(broken)")
    }

    @Test func theTaskCountIsBoundedBeforeAnyTaskIsChecked() throws {
        // The surplus task is broken too: the count is what is said.
        let tasks = Array(repeating: Self.task(), count: Limits.tasksPerJob) + [Self.task { $0.command = [] }]
        let broken = try #require(Self.broken(Self.job(tasks)))
        #expect(broken.field == "tasks" && broken.rule.contains("\(Limits.tasksPerJob)"))
    }

    // MARK: frame templates

    @Test func aTemplateExpandsIntoOneTaskPerChunk() throws {
        let tasks = try Self.template(frames: "1-5,9", chunk: 2, env: ["R": "{start}:{end}"], cwd: "/w").validated().submission.tasks
        #expect(tasks.map(\.name) == ["frames 1-2", "frames 3-4", "frame 5", "frame 9"])
        #expect(tasks.map(\.command) == [["r", "1", "2"], ["r", "3", "4"], ["r", "5", "5"], ["r", "9", "9"]])
        #expect(tasks.map(\.frames) == [1...2, 3...4, 5...5, 9...9])
        #expect(tasks[1].env == ["R": "3:4"] && tasks.allSatisfy { $0.cwd == "/w" })
    }

    @Test func aTemplatesFieldsAreNamedAtTheJobsRoot() throws {
        let cases: [(WrittenJob, String)] = [
            (try Self.template(frames: "1-10", chunk: 0), "chunk"),
            (try Self.template(frames: "1-10", command: []), "command"),
            (try Self.template(frames: "1-10", env: ["1X": ""]), "env"),
            (try Self.template(frames: "1-10", cwd: "rel"), "cwd"),
            (try Self.template(frames: "1-100001"), "frames"),
        ]
        for (job, field) in cases {
            let broken = try #require(Self.broken(job))
            #expect(broken.field == field, "\(broken)")
            #expect(!broken.isTooLarge)
        }
    }

    @Test func whatATemplateWouldExpandToIsBoundedBeforeItIsExpanded() throws {
        // ~0.5 MiB of `{start}` over 100 000 frames: tens of gigabytes if it were expanded.
        let argument = String(repeating: "{start}", count: 18)
        let job = try Self.template(frames: "1-100000", command: ["echo"] + Array(repeating: argument, count: 4000))
        let broken = try #require(Self.broken(job))
        #expect(broken.isTooLarge && broken.field == "frames")
        #expect(broken.refusal.status == 413 && broken.refusal.code == "too_large")
        #expect(broken.rule.contains("100000 tasks"), "\(broken)")
        // Exactly the limit expands.
        #expect(try Self.template(frames: "1-100000", command: ["x", "{start}"]).validated().submission.tasks.count
                == Limits.tasksPerJob)
    }

    // MARK: the dependency graph

    @Test func dependenciesAreResolvedOnceIntoTheGraph() throws {
        let validated = try Self.job([Self.task("a"), Self.task("b") { $0.dependsOn = ["a"] },
                                      Self.task("c") { $0.dependsOn = ["b", "a", "b"] }]).validated()
        #expect(validated.graph.prerequisites == [[], [0], [0, 1]])
    }

    @Test func aCycleAnUnknownOrAnAmbiguousDependencyIsRefusedAtTasks() throws {
        let cycle = try #require(Self.broken(Self.job([Self.task("a") { $0.dependsOn = ["b"] },
                                                       Self.task("b") { $0.dependsOn = ["a"] }])))
        #expect(cycle.field == "tasks" && cycle.rule.contains("cycle"), "\(cycle)")
        let unknown = try #require(Self.broken(Self.job([Self.task("a") { $0.dependsOn = ["nope"] }])))
        #expect(unknown.field == "tasks" && unknown.rule.contains("'nope', which is no task of this job"), "\(unknown)")
        let ambiguous = try #require(Self.broken(Self.job([Self.task("a"), Self.task("a"),
                                                           Self.task("b") { $0.dependsOn = ["a"] }])))
        #expect(ambiguous.field == "tasks" && ambiguous.rule.contains("several tasks share"), "\(ambiguous)")
        // Duplicate names nobody depends on are fine.
        #expect(try Self.job([Self.task("a"), Self.task("a")]).validated().graph.prerequisites == [[], []])
    }

    @Test func aJobBuiltInCodeGoesThroughTheSameRules() {
        var job = JobSubmission(name: "j", tasks: [Self.task { $0.env = ["BAD-NAME": "x"] }])
        #expect(throws: BrokenRule.self) { try job.validated() }
        job.tasks[0].env = [:]
        #expect(throws: Never.self) { try job.validated() }
    }
}
