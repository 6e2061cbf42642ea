import Foundation
import PaddockTestSupport
import PaddockProtocol
@testable import PaddockOpenJD
import Testing

@Suite("OpenJD range expressions")
struct RangeExpressionTests {
    // What openjd-model 0.14.0's IntRangeExpr gives for the same text.
    static let valid: [(String, [Int])] = [
        ("1-5", [1, 2, 3, 4, 5]),
        ("-1 - 1", [-1, 0, 1]),
        ("1-5:2", [1, 3, 5]),
        ("10-15:2,1-5", [1, 2, 3, 4, 5, 10, 12, 14]),
        ("1-10:4", [1, 5, 9]),
        ("1-10:4,10-15", [1, 5, 9, 10, 11, 12, 13, 14, 15]),
        ("10-1:-3", [10, 7, 4, 1]),
        ("100-1:-25", [100, 75, 50, 25]),
        ("50, 60-100:5, 1-10", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 50, 60, 65, 70, 75, 80, 85, 90, 95, 100]),
        ("20-10:-2,1-5", [1, 2, 3, 4, 5, 20, 18, 16, 14, 12, 10]),
        ("-5--1", [-5, -4, -3, -2, -1]),
        (" 7 ,2", [2, 7]),
        ("1-5:7", [1]),
        ("3", [3]),
        ("1-2,-3", [-3, 1, 2]),
    ]

    @Test(arguments: valid) func expands(_ text: String, _ values: [Int]) throws {
        let expression = try IntRangeExpression(text, at: FieldPath("range"))
        #expect(expression.values == values)
        #expect(expression.count == values.count)
    }

    static let invalid: [(String, String)] = [
        ("1 - -1", "negative step"),
        ("5-1", "negative step"),
        ("1-5:-1", "positive step"),
        ("1-3:0", "cannot be zero"),
        ("", "empty"),
        ("a", "must start with an integer"),
        ("1-", "integer after '-'"),
        ("1-5:", "integer after ':'"),
        ("1 5", "not a range expression"),
        ("1-5:2.0", "not a range expression"),
        ("+3", "must start with an integer"),
        ("1-10:2,2-4", "overlap"),
        ("20-10:-2,15", "overlap"),
        ("3,3", "overlap"),
    ]

    @Test(arguments: invalid) func refuses(_ text: String, _ rule: String) {
        let message = openJDError { _ = try IntRangeExpression(text, at: FieldPath("steps[0].range")) }
        #expect(message?.hasPrefix("steps[0].range: ") == true, "\(message ?? "no error")")
        #expect(message?.contains(rule) == true, "\(message ?? "no error")")
    }
}

@Suite("OpenJD parameter spaces")
struct ParameterSpaceTests {
    func values(_ job: OpenJDJob, step: Int = 0) -> [String] {
        job.steps[step].tasks.map { $0.map { "\($0.name)=\($0.value)" }.joined(separator: ",") }
    }

    @Test func productIsTheDefaultAndTheLastVariesFastest() throws {
        let made = try job(spaceTemplate("""
            taskParameterDefinitions:
            - {name: A, type: INT, range: "1-2"}
            - {name: B, type: STRING, range: [x, y, z]}
            """))
        #expect(values(made) == ["A=1,B=x", "A=1,B=y", "A=1,B=z", "A=2,B=x", "A=2,B=y", "A=2,B=z"])
    }

    @Test func associationsAndNesting() throws {
        let made = try job(spaceTemplate("""
            taskParameterDefinitions:
            - {name: A, type: INT, range: [1, 2, 3]}
            - {name: B, type: INT, range: [10, 11, 12]}
            - {name: C, type: INT, range: [20, 21]}
            - {name: D, type: STRING, range: [a, b, c]}
            combination: "((A, B) , D) * C"
            """))
        #expect(values(made) == [
            "A=1,B=10,C=20,D=a", "A=1,B=10,C=21,D=a", "A=2,B=11,C=20,D=b",
            "A=2,B=11,C=21,D=b", "A=3,B=12,C=20,D=c", "A=3,B=12,C=21,D=c",
        ])
        let nested = try job(spaceTemplate("""
            taskParameterDefinitions:
            - {name: A, type: INT, range: "1-4"}
            - {name: B, type: INT, range: "1-2"}
            - {name: C, type: INT, range: "5-6"}
            combination: "(A, B * C)"
            """))
        #expect(values(nested) == ["A=1,B=1,C=5", "A=2,B=1,C=6", "A=3,B=2,C=5", "A=4,B=2,C=6"])
    }

    @Test func combinationErrorsNameTheFieldAndTheRule() throws {
        let base = """
            taskParameterDefinitions:
            - {name: A, type: INT, range: [1, 2, 3]}
            - {name: C, type: INT, range: [20, 21]}
            """
        let cases: [(String, String)] = [
            ("(A, C)", "same number of values (A has 3, C has 2)"),
            ("A * A", "appears more than once"),
            ("A * Q", "'Q' is not a task parameter"),
            ("A", "'C' does not"),
            ("A * (C", "expected ',' or ')'"),
            ("A + C", "unexpected '+ C'"),
            ("(A) * C", "must have more than one term"),
        ]
        for (expression, rule) in cases {
            let message = openJDError { _ = try job(spaceTemplate(base + "\ncombination: \"\(expression)\"")) }
            #expect(message?.hasPrefix("steps[0].parameterSpace.combination: ") == true, "\(message ?? "none")")
            #expect(message?.contains(rule) == true, "\(expression): \(message ?? "none")")
        }
    }

    @Test func formatStringsInRangesAndValues() throws {
        let made = try job(spaceTemplate("""
            taskParameterDefinitions:
            - {name: Frame, type: INT, range: "1-{{Param.End}}:{{Param.Step}}"}
            - {name: Cam, type: STRING, range: ["cam_{{Param.Shot}}", "{{RawParam.Shot}}"]}
            - {name: Scale, type: FLOAT, range: [0.5, 2.0, 2, "  007.50 ", "{{Param.Zero}}"]}
            """, parameters: """
            parameterDefinitions:
            - {name: End, type: INT, default: 5}
            - {name: Step, type: INT, default: 2}
            - {name: Shot, type: STRING}
            - {name: Zero, type: FLOAT, default: "-0.00"}
            """), ["Shot": "s010"])
        #expect(made.steps[0].tasks.count == 3 * 2 * 5)
        #expect(Set(made.steps[0].tasks.map { $0[0].value }) == ["1", "3", "5"])
        #expect(made.steps[0].tasks.prefix(10).map { $0[1].value } == Array(repeating: "cam_s010", count: 5)
            + Array(repeating: "s010", count: 5))
        #expect(made.steps[0].tasks.prefix(5).map { $0[2].value } == ["0.5", "2.0", "2", "7.50", "0.00"])
    }

    @Test func errorsNameTheFieldPath() throws {
        let text = """
            specificationVersion: jobtemplate-2023-09
            name: T
            steps:
            - name: A
              script: {actions: {onRun: {command: echo}}}
            - name: B
              parameterSpace:
                taskParameterDefinitions:
                - {name: F, type: INT, range: "5-1"}
              script: {actions: {onRun: {command: echo}}}
            """
        let message = openJDError { _ = try job(text) }
        #expect(message == "steps[1].parameterSpace.taskParameterDefinitions[0].range: "
            + "'5-1': the descending range 5-1 needs a negative step (such as 5-1:-1)")
        let unknown = openJDError { _ = try job(spaceTemplate("""
            taskParameterDefinitions:
            - {name: F, type: INT, range: "1-{{Param.Nope}}"}
            """)) }
        #expect(unknown?.hasPrefix("steps[0].parameterSpace.taskParameterDefinitions[0].range: variable Param.Nope does not exist") == true,
                "\(unknown ?? "none")")
        let extra = openJDError { _ = try job(spaceTemplate("""
            taskParameterDefinitions:
            - {name: F, type: INT, range: "1-2", step: 3}
            """)) }
        #expect(extra == "steps[0].parameterSpace.taskParameterDefinitions[0].step: unknown field (extra fields are not permitted)")
    }

    @Test func theTaskLimitIsNamed() throws {
        let text = spaceTemplate("""
            taskParameterDefinitions:
            - {name: A, type: INT, range: "1-1000"}
            - {name: B, type: INT, range: "1-1000"}
            """)
        let message = openJDError { _ = try job(text) }
        #expect(message == "steps[0].parameterSpace: this step's parameter space has 1000000 tasks, "
            + "more than Paddock's limit of 100000 tasks per job")
        let second = openJDError { _ = try job("""
            specificationVersion: jobtemplate-2023-09
            name: T
            steps:
            - name: A
              parameterSpace: {taskParameterDefinitions: [{name: F, type: INT, range: "1-60000"}]}
              script: {actions: {onRun: {command: echo}}}
            - name: B
              parameterSpace: {taskParameterDefinitions: [{name: F, type: STRING, range: [a, b]}, {name: G, type: INT, range: "1-30000"}]}
              script: {actions: {onRun: {command: echo}}}
            """) }
        #expect(second == "steps[1].parameterSpace: this step's parameter space has 60000 tasks; with the 60000 of the "
            + "steps before it the job would have more than Paddock's limit of 100000 tasks per job")
        let huge = openJDError { _ = try job(spaceTemplate("""
            taskParameterDefinitions:
            - {name: A, type: INT, range: "1-100000000000000"}
            """)) }
        #expect(huge == "steps[0].parameterSpace.taskParameterDefinitions[0].range: the range makes 100000000000000 tasks, "
            + "more than Paddock's limit of 100000 tasks per job", "\(huge ?? "none")")
    }
}

@Suite("OpenJD job parameters")
struct JobParameterTests {
    let definitions = """
        specificationVersion: jobtemplate-2023-09
        name: "Job {{Param.Count}} {{RawParam.Out}}"
        parameterDefinitions:
        - {name: Count, type: INT, minValue: 1, maxValue: 10, default: 3}
        - {name: Ratio, type: FLOAT, minValue: 0.5, maxValue: "1.5", default: 1.0}
        - {name: Day, type: STRING, allowedValues: [MON, TUE], default: MON}
        - {name: Tag, type: STRING, minLength: 2, maxLength: 4, default: ab}
        - {name: Out, type: PATH}
        - {name: Pick, type: INT, allowedValues: [3, 8, 7]}
        steps:
        - name: S
          script: {actions: {onRun: {command: echo, args: ["{{Param.Out}}"]}}}
        """

    @Test func defaultsAndGivenValues() throws {
        let made = try job(definitions, ["Out": "/render/out", "Pick": "007"])
        #expect(made.name == "Job 3 /render/out")
        #expect(made.parameters["Pick"]?.value == "007")  // a given value keeps its text, as in the reference
        #expect(made.parameters["Ratio"]?.value == "1.0")
        #expect(made.parameters["Day"]?.value == "MON")
        let numbers = try OpenJDJob(template: try template(definitions),
                                    values: ["Out": .string("/o"), "Pick": .number("8"), "Ratio": .number("1.25")],
                                    taskLimit: 10)
        #expect(numbers.parameters["Ratio"]?.value == "1.25")
    }

    static let refusals: [([String: String], String)] = [
        (["Pick": "3"], "parameters: values missing for required job parameters: Out"),
        (["Out": "/o", "Pick": "3", "Extra": "1"], "parameters.Extra: job parameter Extra is not defined by the template"),
        (["Out": "/o", "Pick": "4"], "parameters.Pick: value (4) for parameter Pick must be one of the allowed values: 3, 8, 7"),
        (["Out": "/o", "Pick": "3", "Count": "11"], "parameters.Count: value (11) for parameter Count must be at most the maxValue, 10"),
        (["Out": "/o", "Pick": "3", "Count": "0"], "parameters.Count: value (0) for parameter Count must be at least the minValue, 1"),
        (["Out": "/o", "Pick": "3", "Count": "2.5"], "parameters.Count: value for parameter Count must be an integer or an integer string"),
        (["Out": "/o", "Pick": "3", "Ratio": "0.25"], "parameters.Ratio: value (0.25) for parameter Ratio must be at least the minValue, 0.5"),
        (["Out": "/o", "Pick": "3", "Ratio": "x"], "parameters.Ratio: value for parameter Ratio must be a floating point number or a string of one"),
        (["Out": "/o", "Pick": "3", "Day": "WED"], "parameters.Day: value (WED) for parameter Day must be one of the allowed values: MON, TUE"),
        (["Out": "/o", "Pick": "3", "Tag": "a"], "parameters.Tag: value for parameter Tag must be at least 2 characters long"),
        (["Out": "/o", "Pick": "3", "Tag": "abcde"], "parameters.Tag: value for parameter Tag must be at most 4 characters long"),
    ]

    @Test(arguments: refusals) func refusesBadValues(_ values: [String: String], _ expected: String) {
        #expect(openJDError { _ = try job(definitions, values) } == expected)
    }

    @Test func checksTheTemplateItself() {
        let cases: [(String, String)] = [
            ("- {name: X, type: INT, default: 20, maxValue: 10}", "parameterDefinitions[0].default: value (20) for parameter X must be at most the maxValue, 10"),
            ("- {name: X, type: INT, minValue: 5, maxValue: 1}", "parameterDefinitions[0].minValue: must be less than or equal to maxValue"),
            ("- {name: 1X, type: INT}", "parameterDefinitions[0].name: must be an identifier"),
            ("- {name: X, type: BOOL}", "parameterDefinitions[0].type: must be one of INT, FLOAT, STRING, PATH"),
            ("- {name: X, type: INT, minLength: 1}", "parameterDefinitions[0].minLength: unknown field"),
            ("- {name: X, type: STRING}\n- {name: X, type: INT}", "parameterDefinitions[1].name: 'X' is defined twice"),
        ]
        for (definitions, expected) in cases {
            let text = """
                specificationVersion: jobtemplate-2023-09
                name: T
                parameterDefinitions:
                \(definitions)
                steps:
                - name: S
                  script: {actions: {onRun: {command: echo}}}
                """
            let message = openJDError { _ = try template(text) }
            #expect(message?.hasPrefix(expected) == true, "\(message ?? "none") vs \(expected)")
        }
    }
}

@Suite("OpenJD templates")
struct TemplateTests {
    @Test func structureErrors() {
        let cases: [(String, String)] = [
            ("specificationVersion: jobtemplate-2023-10\nname: T\nsteps: []", "specificationVersion: must be 'jobtemplate-2023-09'"),
            ("specificationVersion: jobtemplate-2023-09\nname: T\nsteps: []", "steps: must have at least 1 item(s)"),
            ("specificationVersion: jobtemplate-2023-09\nsteps: []", "name: field required"),
            ("""
             specificationVersion: jobtemplate-2023-09
             name: T
             steps:
             - {name: A, dependencies: [{dependsOn: B}], script: {actions: {onRun: {command: x}}}}
             - {name: B, dependencies: [{dependsOn: A}], script: {actions: {onRun: {command: x}}}}
             """, "steps: the step dependencies form a cycle"),
            ("""
             specificationVersion: jobtemplate-2023-09
             name: T
             steps:
             - {name: A, dependencies: [{dependsOn: Z}], script: {actions: {onRun: {command: x}}}}
             """, "steps[0].dependencies[0].dependsOn: 'Z' is not the name of a step of this template"),
            ("""
             specificationVersion: jobtemplate-2023-09
             name: T
             steps:
             - {name: A, script: {actions: {onRun: {command: "x {{Param.Q"}}}}
             """, "steps[0].script.actions.onRun.command: failed to parse interpolation expression"),
            ("""
             specificationVersion: jobtemplate-2023-09
             name: T
             steps:
             - {name: A, script: {actions: {onRun: {command: "x", timeout: 0}}}}
             """, "steps[0].script.actions.onRun.timeout: must be a positive whole number of seconds"),
        ]
        for (text, expected) in cases {
            let message = openJDError { _ = try template(text) }
            #expect(message?.hasPrefix(expected) == true, "\(message ?? "none") vs \(expected)")
        }
    }

    @Test func jsonKeepsNumbersAsWritten() throws {
        let value = try TemplateValue(json: Array(#"{"a": [2.0, 2, -1.50e3, "x\u00e9\n"], "b": {"c": null, "d": true}}"#.utf8))
        #expect(value["a"] == .array([.number("2.0"), .number("2"), .number("-1.50e3"), .string("xé\n")]))
        #expect(value.json == #"{"a":[2.0,2,-1.50e3,"xé\n"],"b":{"c":null,"d":true}}"#)
        for bad in ["{", #"{"a":1,"a":2}"#, "[01]", "[1.]", #"["\x"]"#, "[1] 2", String(repeating: "[", count: 100)] {
            #expect(throws: OpenJDError.self) { try TemplateValue(json: Array(bad.utf8)) }
        }
    }
}

@Suite("OpenJD to a Paddock job")
struct ConversionTests {
    let pipeline = """
        specificationVersion: jobtemplate-2023-09
        name: Pipeline
        parameterDefinitions:
        - {name: Frames, type: STRING, default: "1-3"}
        steps:
        - name: Render
          parameterSpace:
            taskParameterDefinitions:
            - {name: Frame, type: INT, range: "{{Param.Frames}}"}
          hostRequirements:
            amounts:
            - {name: amount.worker.vcpu, min: 2}
            - {name: amount.worker.memory, min: 512, max: 1024}
            - {name: amount.worker.gpu, min: 1}
            - {name: amount.worker.disk.scratch, min: 2}
            attributes:
            - {name: attr.worker.os.family, anyOf: [linux, macos]}
            - {name: attr.custom.host_config, anyOf: [HostConfigA]}
          script:
            actions:
              onRun: {command: render, args: ["--frame", "{{Task.Param.Frame}}"], timeout: 600}
        - name: Encode
          dependencies: [{dependsOn: Render}]
          script:
            actions:
              onRun: {command: bash, args: ["{{Task.File.Encode}}", "{{Session.WorkingDirectory}}"]}
            embeddedFiles:
            - name: Encode
              type: TEXT
              runnable: true
              data: |
                echo "it's {{Param.Frames}} in {{Session.WorkingDirectory}}"
        """

    @Test func stepsBecomeTasks() throws {
        let converted = try OpenJDConversion(try job(pipeline))
        let tasks = converted.submission.tasks
        #expect(converted.submission.name == "Pipeline")
        #expect(tasks.map(\.name) == ["Render[0] Frame=1", "Render[1] Frame=2", "Render[2] Frame=3", "Encode"])
        #expect(tasks[1].command == ["render", "--frame", "2"])
        #expect(tasks[1].env == ["PADDOCK_PARAM_FRAME": "2"])
        #expect(tasks[1].timeout == 600)
        // Attributes become tags: one value needed as is, several as an `any:` alternative.
        #expect(tasks[1].requirements == TaskRequirements(resources: ResourceVector(
            cpus: 2, ram: 512 << 20, disk: 2 << 30, gpus: 1), tags: ["any:os.family:linux:macos", "custom.host_config:HostConfigA"]))
        #expect(tasks[3].dependsOn == ["Render[0] Frame=1", "Render[1] Frame=2", "Render[2] Frame=3"])
        #expect(tasks[3].requirements == nil)
        #expect(converted.warnings.count == 1)
        #expect(converted.warnings.contains { $0.hasPrefix("steps[0].hostRequirements.amounts[1].max:") })
        // Paddock's own checks accept what the conversion makes (names, dependencies, bounds).
        let wire = try JSONEncoder().encode(converted.submission)
        _ = try JSONDecoder().decode(JobSubmission.self, from: wire)
    }

    @Test func embeddedFilesAreWrittenByTheCommand() throws {
        let converted = try OpenJDConversion(try job(pipeline))
        let encode = try #require(converted.submission.tasks.last)
        #expect(encode.command.prefix(2) == ["/bin/sh", "-c"])
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("openjd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let ran = try runCommand(encode.command, environment: ["PADDOCK_WORK_DIR": directory.path, "PATH": "/usr/bin:/bin"])
        #expect(ran.status == 0)
        #expect(ran.output == "it's 1-3 in \(directory.path)\n")
        let attributes = try FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent("Encode").path)
        #expect((attributes[.posixPermissions] as? Int) == 0o500)
    }

    @Test func aStepMayDependOnOneWrittenAfterIt() throws {
        let text = try String(contentsOf: fixtures.deletingLastPathComponent().appendingPathComponent("Templates/scopes.yaml"),
                              encoding: .utf8)
        let converted = try OpenJDConversion(try job(text))
        let tasks = converted.submission.tasks
        #expect(tasks.map(\.name) == ["Late[0] Where=/s/a.blend", "Late[1] Where=/other/sh010", "Early"])
        #expect(tasks[0].dependsOn == ["Early"])
        #expect(tasks[0].command.prefix(2) == ["/bin/sh", "-c"])
        #expect(try DependencyGraph(tasks: tasks).prerequisites == [[2], [2], []])
    }

    @Test func referencesAreCheckedWhereTheyAreWritten() {
        let cases: [(String, String)] = [
            ("name: \"{{Param.P}}\"", "name: variable Param.P does not exist at this location"),
            ("name: \"{{Task.Param.P}}\"", "name: variable Task.Param.P does not exist at this location"),
            ("name: x\n  # \nsteps:\n- name: S\n  script: {actions: {onRun: {command: \"{{Task.File.F}}\"}}}",
             "steps[0].script.actions.onRun.command: variable Task.File.F does not exist at this location"),
        ]
        for (head, expected) in cases {
            var text = """
                specificationVersion: jobtemplate-2023-09
                parameterDefinitions:
                - {name: P, type: PATH}

                """ + head
            if !head.contains("steps:") { text += "\nsteps:\n- name: S\n  script: {actions: {onRun: {command: echo}}}" }
            #expect(openJDError { _ = try template(text) } == expected)
        }
    }

    /// A step behind more than 1000 tasks, or many tasks behind many, waits behind barrier tasks.
    @Test func wideDependenciesGoThroughBarrierTasks() throws {
        func converted(_ frames: String, encodes: Int) throws -> [TaskSpec] {
            let text = pipeline.replacingOccurrences(of: "default: \"1-3\"", with: "default: \"\(frames)\"")
                .replacingOccurrences(of: "dependencies: [{dependsOn: Render}]", with: """
                    dependencies: [{dependsOn: Render}]
                      parameterSpace: {taskParameterDefinitions: [{name: Part, type: INT, range: "1-\(encodes)"}]}
                    """)
            let tasks = try OpenJDConversion(try job(text)).submission.tasks
            _ = try DependencyGraph(tasks: tasks)  // names unique, no cycle
            return tasks
        }
        // 3 × 2: direct.
        let small = try converted("1-3", encodes: 2)
        #expect(small.count == 5)
        #expect(small[3].dependsOn.count == 3)
        // 2500 frames, one encode: three barriers of at most 1000, the encode behind them.
        let wide = try converted("1-2500", encodes: 1)
        let barriers = wide.filter { $0.name.hasPrefix("Encode: waits") }
        #expect(barriers.map(\.name) == (1...3).map { "Encode: waits for its dependencies (1.\($0))" })
        #expect(barriers.map(\.dependsOn.count) == [1000, 1000, 500])
        #expect(barriers.allSatisfy { $0.command == ["/bin/sh", "-c", ":"] && $0.requirements?.resources == .zero })
        #expect(wide.last?.dependsOn == barriers.map(\.name))
        // 200 × 100 edges: one barrier, 300 edges instead of 20000.
        let many = try converted("1-200", encodes: 100)
        #expect(many.filter { $0.name.hasPrefix("Encode: waits") }.count == 1)
        #expect(many.filter { $0.name.hasPrefix("Encode[") }.allSatisfy { $0.dependsOn == ["Encode: waits for its dependencies (1.1)"] })
    }

    /// Runs a converted task's command as the agent would, in a fresh working directory.
    func run(_ task: TaskSpec) throws -> (status: Int32, output: String, errors: String, directory: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("openjd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let ran = try runCommand(task.command, environment: task.env.merging(["PADDOCK_WORK_DIR": directory.path,
                                                                              "PATH": "/usr/bin:/bin"]) { a, _ in a },
                                 cwd: directory)
        return (ran.status, ran.output, ran.errors, directory.path)
    }

    let environments = """
        specificationVersion: jobtemplate-2023-09
        name: Envs
        parameterDefinitions:
        - {name: Fail, type: STRING, default: "no"}
        jobEnvironments:
        - name: Job Env
          variables: {JOB_VAR: "job {{Param.Fail}}"}
          script:
            actions:
              onEnter: {command: sh, args: ["-c", "echo enter job $JOB_VAR; echo 'openjd_env: FROM_ENTER=it is set'; echo 'openjd_env: GONE=x'; echo 'openjd_unset_env: GONE'"]}
              onExit: {command: sh, args: ["-c", "echo exit job $JOB_VAR"]}
        steps:
        - name: S
          stepEnvironments:
          - name: Step
            variables: {STEP_VAR: "{{Session.WorkingDirectory}}/step"}
            script:
              actions:
                onEnter: {command: "{{Env.File.Enter}}"}
                onExit: {command: sh, args: ["-c", "echo exit step $STEP_VAR"]}
              embeddedFiles:
              - {name: Enter, type: TEXT, runnable: true, data: "#!/bin/sh\\necho enter step $JOB_VAR\\n[ {{Param.Fail}} = no ]\\n"}
          script:
            actions:
              onRun: {command: sh, args: ["-c", "echo run $JOB_VAR $STEP_VAR $FROM_ENTER ${GONE:-unset}"]}
        """

    /// Plays the agent's part for a task of a session: each environment's enter script with what the
    /// ones before it left (`env -0` snapshots, `SessionVariables`), the action with all of it, then
    /// each entered environment's exit script, innermost first, with the environment of its level.
    func runSession(_ task: TaskSpec) throws -> (status: Int32, output: String, errors: String, directory: String, failed: String?) {
        let plan = try #require(try SessionPlan.from(env: task.env))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("openjd-\(UUID().uuidString)")
        let taskDir = directory.appendingPathComponent("task")
        try FileManager.default.createDirectory(at: taskDir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var base = task.env.filter { $0.key != SessionPlan.variable }
        base.merge(["PADDOCK_WORK_DIR": directory.path, SessionPlan.directoryVariable: directory.path, "PATH": "/usr/bin:/bin"]) { _, new in new }
        var levels: [SessionVariables] = []
        var output = "", errors = ""
        var status: Int32 = 0
        var failed: String?
        for (k, environment) in plan.environments.enumerated() {
            let snapshot = directory.path + "/snapshot-\(k)"
            let env = (levels.last ?? SessionVariables()).applied(to: base).merging([SessionPlan.snapshotVariable: snapshot]) { _, new in new }
            let ran = try runCommand(["/bin/sh", "-c", environment.enter, "openjd-enter"], environment: env, cwd: directory)
            output += ran.output
            errors += ran.errors
            guard ran.status == 0 else {
                status = ran.status
                failed = environment.name
                break
            }
            levels.append(SessionVariables(from: base, snapshot: try Data(contentsOf: URL(fileURLWithPath: snapshot))))
        }
        if failed == nil {
            var env = (levels.last ?? SessionVariables()).applied(to: base)
            env["PADDOCK_WORK_DIR"] = taskDir.path
            let ran = try runCommand(["/usr/bin/env"] + task.command, environment: env, cwd: directory)
            output += ran.output
            errors += ran.errors
            status = ran.status
        }
        for k in levels.indices.reversed() {
            guard let exit = plan.environments[k].exit else { continue }
            let ran = try runCommand(["/bin/sh", "-c", exit, "openjd-exit"], environment: levels[k].applied(to: base), cwd: directory)
            output += ran.output
            errors += ran.errors
        }
        return (status, output, errors, directory.path, failed)
    }

    @Test func environmentsAreEnteredAndExitedAroundTheTask() throws {
        let task = try #require(try OpenJDConversion(try job(environments)).submission.tasks.first)
        #expect(task.command.count == 4 && task.command[2].hasSuffix("exec 'sh' '-c' 'echo run $JOB_VAR $STEP_VAR $FROM_ENTER ${GONE:-unset}'\n"),
                "the action alone: \(task.command)")
        // Outside its session (an agent without sessions), the action refuses to run.
        let outside = try runCommand(task.command, environment: ["PATH": "/usr/bin:/bin"])
        #expect(outside.status == 1 && outside.errors.contains("runs in its step's session, which its agent did not enter"))
        let plan = try #require(try SessionPlan.from(env: task.env))
        #expect(plan.key == "S")
        #expect(plan.environments.map(\.name) == ["Job Env", "Step"])
        let result = try runSession(task)
        #expect(result.status == 0, "\(result.errors)")
        let dir = result.directory
        #expect(result.output == """
            enter job job no
            openjd_env: FROM_ENTER=it is set
            openjd_env: GONE=x
            openjd_unset_env: GONE
            enter step job no
            run job no \(dir)/step it is set unset
            exit step \(dir)/step
            exit job job no

            """)
    }

    @Test func aFailingOnEnterFailsTheTaskAndExitsWhatWasEntered() throws {
        let task = try #require(try OpenJDConversion(try job(environments, ["Fail": "yes"])).submission.tasks.first)
        let result = try runSession(task)
        #expect(result.status == 1)
        #expect(result.failed == "Step")
        #expect(result.output == "enter job job yes\nopenjd_env: FROM_ENTER=it is set\nopenjd_env: GONE=x\nopenjd_unset_env: GONE\n"
            + "enter step job yes\nexit job job yes\n")
        #expect(result.errors.contains("openjd: environment 'Step': onEnter failed (exit code 1)"), "\(result.errors)")
    }

    /// `openjd_redacted_env: NAME=VALUE` sets NAME as `openjd_env:` does (the agent keeps VALUE out of the log).
    @Test func aRedactedVariableIsSetLikeAnyOther() throws {
        let text = """
            specificationVersion: jobtemplate-2023-09
            name: Secret
            jobEnvironments:
            - name: Vault
              script:
                actions:
                  onEnter: {command: sh, args: ["-c", "echo 'openjd_redacted_env: TOKEN=s3 cr3t'"]}
            steps:
            - name: S
              script:
                actions:
                  onRun: {command: sh, args: ["-c", "echo token $TOKEN"]}
            """
        let task = try #require(try OpenJDConversion(try job(text)).submission.tasks.first)
        let result = try runSession(task)
        #expect(result.output == "openjd_redacted_env: TOKEN=s3 cr3t\ntoken s3 cr3t\n")
    }

    /// In a shared session a task's own embedded files go to its own directory, not the session's:
    /// two tasks running at once in one session do not write over each other's.
    @Test func aSessionsTaskFilesAreTheTasksOwn() throws {
        let text = """
            specificationVersion: jobtemplate-2023-09
            name: Files
            jobEnvironments:
            - {name: Tools, variables: {TOOL: v1}}
            steps:
            - name: S
              parameterSpace: {taskParameterDefinitions: [{name: N, type: INT, range: "1-2"}]}
              script:
                actions:
                  onRun: {command: sh, args: ["{{Task.File.Run}}", "{{Session.WorkingDirectory}}"]}
                embeddedFiles:
                - {name: Run, type: TEXT, data: "echo run {{Task.Param.N}} $TOOL in $1 from $(basename $(dirname $0))"}
            """
        let tasks = try OpenJDConversion(try job(text)).submission.tasks
        #expect(tasks[0].command[2].contains(#""$PADDOCK_WORK_DIR"'/Run'"#), "\(tasks[0].command)")
        for (n, task) in tasks.enumerated() {
            let result = try runSession(task)
            #expect(result.output == "run \(n + 1) v1 in \(result.directory) from task\n", "\(result.errors)")
        }
    }

    /// A variable an environment unsets that the task's own environment had is unset for the action;
    /// one set to the value it had is no change.
    @Test func sessionVariablesAreTheChangesOfTheEnvironments() {
        let base = ["A": "1", "B": "2", "PWD": "/x"]
        let changes = SessionVariables(from: base, snapshot: Data("A=1\0C=3=4\0PWD=/y\0SHLVL=2\0junk\0".utf8))
        let expected: [String: String?] = ["B": nil, "C": "3=4"]
        #expect(changes.changes == expected)
        #expect(changes.applied(to: ["A": "9", "B": "8"]) == ["A": "9", "C": "3=4"])
    }

    @Test func environmentReferencesAreScoped() {
        let bad = environments.replacingOccurrences(of: "variables: {JOB_VAR: \"job {{Param.Fail}}\"}",
                                                    with: "variables: {JOB_VAR: \"{{Task.Param.X}}\"}")
        #expect(openJDError { _ = try template(bad) }
            == "jobEnvironments[0].variables.JOB_VAR: variable Task.Param.X does not exist at this location")
    }

    @Test func refusesWhatPaddockCannotHonour() throws {
        // A Windows step is accepted: it fits no (Linux) agent, which the job's warnings say.
        let windows = pipeline.replacingOccurrences(of: "anyOf: [linux, macos]", with: "anyOf: [Windows]")
        #expect(try OpenJDConversion(try job(windows)).submission.tasks[0].requirements?.tags.contains("os.family:windows") == true)
        let long = pipeline.replacingOccurrences(of: "anyOf: [HostConfigA]", with: "anyOf: [HostConfigA, \(String(repeating: "B", count: 60))]")
        #expect(openJDError { _ = try OpenJDConversion(try job(long)) }?.hasPrefix(
            "steps[0].hostRequirements.attributes[1]: 'any:custom.host_config:HostConfigA:BBB") == true)
        let cased = pipeline.replacingOccurrences(of: "- {name: Frame, type: INT, range: \"{{Param.Frames}}\"}",
                                                  with: "- {name: Frame, type: INT, range: \"{{Param.Frames}}\"}\n    - {name: FRAME, type: INT, range: [1]}")
        #expect(openJDError { _ = try OpenJDConversion(try job(cased)) }
            == "steps[0].parameterSpace.taskParameterDefinitions[1].name: 'FRAME' and 'Frame' would both be PADDOCK_PARAM_FRAME "
            + "in the task's environment: Paddock needs task parameter names that differ in more than case")
    }
}

@Suite("OpenJD submission bodies")
struct RequestTests {
    let template = #"{"specificationVersion": "jobtemplate-2023-09", "name": "J {{Param.N}}", "parameterDefinitions": [{"name": "N", "type": "INT", "maxValue": 3}], "steps": [{"name": "S", "parameterSpace": {"taskParameterDefinitions": [{"name": "F", "type": "INT", "range": "1-{{Param.N}}"}]}, "script": {"actions": {"onRun": {"command": "echo", "args": ["{{Task.Param.F}}"]}}}}]}"#

    @Test func convertsIntoAnOrdinaryJob() throws {
        let body = #"{"openjd": {"template": \#(template), "parameters": {"N": 2}}, "priority": 7, "labels": {"show": "x"}, "after": ["j1"]}"#
        let converted = try #require(try OpenJDRequest.convert(json: Array(body.utf8)))
        let job = converted.job.submission
        #expect(job.name == "J 2")
        #expect(job.priority == 7)
        #expect(job.labels == ["openjd": "jobtemplate-2023-09", "show": "x"])
        #expect(job.after.map(\.description) == ["j1"])
        #expect(job.tasks.map(\.command) == [["echo", "1"], ["echo", "2"]])
        #expect(job.progressRegex != nil)
        #expect(converted.warnings.isEmpty)
    }

    @Test func otherBodiesAreLeftAlone() throws {
        #expect(try OpenJDRequest.convert(json: Array(#"{"name": "openjd", "tasks": []}"#.utf8)) == nil)
        #expect(try OpenJDRequest.convert(json: Array("not json".utf8)) == nil)
        #expect(OpenJDRequest.mayBe(Array(#"{"openjd": {}}"#.utf8)))
        #expect(!OpenJDRequest.mayBe(Array(#"{"name": "x"}"#.utf8)))
    }

    @Test func refusalsNameTheFieldFromTheBodysRoot() {
        let cases: [(String, String)] = [
            (#"{"openjd": {"template": \#(template), "parameters": {"N": 4}}}"#, "openjd.parameters.N"),
            (#"{"openjd": {"template": \#(template)}}"#, "openjd.parameters"),
            (#"{"openjd": {"template": \#(template), "parameters": {"N": 1}}, "tasks": []}"#, "tasks"),
            (#"{"openjd": {"template": {"specificationVersion": "jobtemplate-2023-09"}}}"#, "openjd.template.name"),
            (#"{"openjd": {"template": \#(template), "parameters": [1]}}"#, "openjd.parameters"),
            (#"{"openjd": {"parameters": {}}}"#, "openjd.template"),
            (#"{"openjd": {"template": \#(template), "parameters": {"N": 1}}, "priority": 10000000}"#, "priority"),
            (#"{"openjd": {"template": \#(template), "parameters": {"N": 1}}, "after": ["x"]}"#, "after[0]"),
        ]
        for (body, field) in cases {
            do {
                _ = try OpenJDRequest.convert(json: Array(body.utf8))
                Issue.record("accepted \(body)")
            } catch {
                #expect(error.field == field, "\(error)")
                #expect(error.message.hasPrefix(field + ": "), "\(error)")
            }
        }
    }

    /// The OpenAPI document describes what the decoder takes (the schema is in Sources/Protocol/openapi.yaml).
    @Test func theOpenAPISchemaMatches() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/Protocol/openapi.yaml")
        let document = try yamlValue(try String(contentsOf: path, encoding: .utf8))
        let schemas = document["components"]?["schemas"]
        func properties(_ name: String) -> Set<String> {
            guard case .object(let object)? = schemas?[name]?["properties"] else { return [] }
            return Set(object.keys)
        }
        #expect(properties("JobFromOpenJD") == OpenJDRequest.keys)
        #expect(properties("OpenJDTemplateRequest") == OpenJDRequest.openjdKeys)
        #expect(schemas?["JobFromOpenJD"]?["additionalProperties"] == .bool(false))
        #expect(schemas?["OpenJDTemplateRequest"]?["additionalProperties"] == .bool(false))
        guard case .array(let variants)? = schemas?["JobSubmission"]?["oneOf"] else {
            Issue.record("JobSubmission has no oneOf")
            return
        }
        #expect(variants.contains(.object(TemplateObject([("$ref", .string("#/components/schemas/JobFromOpenJD"))]))))
    }
}

@Suite("OpenJD samples convert")
struct SampleConversionTests {
    static let samples: [(String, [String: String])] = [
        ("ui-controls-showcase.yaml", ["InputFilePicker": "/in", "OutputFilePicker": "/out", "DirectoryPicker": "/d"]),
        ("host-requirements.yaml", [:]),
        ("stdout-messages.yaml", [:]),
        ("blender-ffmpeg.yaml", [:]),
        ("algorithmic-art.yaml", ["RenderScript": "/s/art.py", "OutputDirectory": "/out", "NumAnimationFrames": "4"]),
        ("ffmpeg.yaml", ["InputFile": "/in/seq.%04d.exr", "OutputDir": "/out", "EndFrame": "48"]),
    ]

    /// Every sample of the specification becomes a job Paddock's own checks accept.
    @Test(arguments: samples) func convertsIntoAValidJob(_ file: String, _ values: [String: String]) throws {
        let converted = try OpenJDConversion(try job(try fixture(file), values))
        let wire = try JSONEncoder().encode(converted.submission)
        let decoded = try JSONDecoder().decode(JobSubmission.self, from: wire)
        #expect(decoded.tasks.count == converted.submission.tasks.count)
        #expect(!decoded.tasks.isEmpty)
    }
}
