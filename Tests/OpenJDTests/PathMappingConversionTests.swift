import Foundation
import PaddockTestSupport
@testable import PaddockOpenJD
import PaddockProtocol
import Testing

/// PATH values and `Session.*PathMapping*` in a converted task (issue 18, item 6): the raw value
/// travels in the task's environment, and the command reads the value the agent mapped.
@Suite struct PathMappingConversionTests {
    let mapped = """
        specificationVersion: jobtemplate-2023-09
        name: Mapped
        parameterDefinitions:
        - {name: Scene, type: PATH}
        - {name: Frames, type: STRING, default: "1"}
        steps:
        - name: Render
          parameterSpace:
            taskParameterDefinitions:
            - {name: Out, type: PATH, range: ["/src/out/a", "/src/out/b"]}
          script:
            actions:
              onRun: {command: sh, args: ["-c", "printf '%s %s %s %s %s\\n' '{{Param.Scene}}' '{{RawParam.Scene}}' '{{Task.Param.Out}}' '{{Task.RawParam.Out}}' {{Session.HasPathMappingRules}}; cat {{Session.PathMappingRulesFile}}"]}
        """

    /// Runs a converted task's command as the agent would, with `rules` as the agent's.
    func run(_ task: TaskSpec, agent rules: PathMappingRules) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("openjd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let base = task.env.merging(["PADDOCK_WORK_DIR": directory.path, "PATH": "/usr/bin:/bin"]) { _, fact in fact }
        let launch = PathMappingEnvironment.prepare(argv: task.command, environment: base, taskEnv: task.env, cwd: nil, agent: rules)
        let ran = try runCommand(["/usr/bin/env"] + launch.argv, environment: launch.environment)
        #expect(ran.status == 0)
        return ran.output
    }

    @Test func pathValuesAreMappedOnTheHost() throws {
        let converted = try OpenJDConversion(try job(mapped, ["Scene": "/src/shot.blend"]))
        let task = converted.submission.tasks[1]
        #expect(task.command.prefix(2) == ["/bin/sh", "-c"])
        #expect(task.env["PADDOCK_RAW_PATH_J1"] == "/src/shot.blend")
        #expect(task.env["PADDOCK_RAW_PATH_T0"] == "/src/out/b")
        #expect(task.env[PathMappingEnvironment.jobRules] == nil)
        let rules = PathMappingRules([PathMappingRule(sourcePathFormat: .posix, sourcePath: "/src", destinationPath: "/dst")])
        #expect(try run(task, agent: rules) == "/dst/shot.blend /src/shot.blend /dst/out/b /src/out/b true\n" + rules.json)
        #expect(try run(task, agent: PathMappingRules([]))
                == "/src/shot.blend /src/shot.blend /src/out/b /src/out/b false\n" + PathMappingRules([]).json)
    }

    @Test func aJobCarriesItsRules() throws {
        let rules = PathMappingRules([PathMappingRule(sourcePathFormat: .windows, sourcePath: "S:\\", destinationPath: "/s")])
        let converted = try OpenJDConversion(try job(mapped, ["Scene": "S:\\shots\\a.blend"]), pathMappingRules: rules)
        let task = converted.submission.tasks[0]
        #expect(task.env[PathMappingEnvironment.jobRules] == rules.json)
        #expect(try run(task, agent: PathMappingRules([])).hasPrefix("/s/shots/a.blend S:\\shots\\a.blend /src/out/a /src/out/a true\n"))
    }

    @Test func theRequestTakesRulesAndNamesTheirFields() throws {
        let template = #"{"specificationVersion": "jobtemplate-2023-09", "name": "x", "parameterDefinitions": [{"name": "P", "type": "PATH"}], "steps": [{"name": "S", "script": {"actions": {"onRun": {"command": "echo", "args": ["{{Param.P}}"]}}}}]}"#
        let rules = #"{"version": "pathmapping-1.0", "path_mapping_rules": [{"source_path_format": "POSIX", "source_path": "/a", "destination_path": "/b"}]}"#
        let body = #"{"openjd": {"template": \#(template), "parameters": {"P": "/a/x"}, "path_mapping_rules": \#(rules)}}"#
        let converted = try #require(try OpenJDRequest.convert(json: Array(body.utf8)))
        let job = converted.job.submission
        #expect(job.tasks[0].env[PathMappingEnvironment.jobRules]?.contains(#""source_path":"/a""#) == true)
        let bad = #"{"openjd": {"template": \#(template), "parameters": {"P": "/a/x"}, "path_mapping_rules": {"version": "pathmapping-1.0", "path_mapping_rules": [{"source_path_format": "MAC", "source_path": "/a", "destination_path": "/b"}]}}}"#
        do {
            _ = try OpenJDRequest.convert(json: Array(bad.utf8))
            Issue.record("accepted")
        } catch {
            #expect(error.field == "openjd.path_mapping_rules.path_mapping_rules[0].source_path_format", "\(error)")
            #expect(error.message.hasPrefix("openjd.path_mapping_rules.path_mapping_rules[0].source_path_format: "), "\(error)")
        }
    }
}

/// An action's `cancelation` becomes the task's stop grace (issue 18, item 8).
@Suite struct CancelationConversionTests {
    func grace(_ cancelation: String?) throws -> String? {
        let text = """
            specificationVersion: jobtemplate-2023-09
            name: Stop
            steps:
            - name: S
              script:
                actions:
                  onRun: {command: sleep, args: ["60"], timeout: 30\(cancelation.map { ", cancelation: \($0)" } ?? "")}
            """
        let converted = try OpenJDConversion(try job(text))
        #expect(converted.warnings.isEmpty)
        #expect(converted.submission.tasks[0].timeout == 30)
        return converted.submission.tasks[0].env[StopGrace.variable]
    }

    /// An environment action's own timeout stops it (coreutils' timeout) and fails the task.
    @Test func anEnvironmentActionTimesOut() throws {
        let text = """
            specificationVersion: jobtemplate-2023-09
            name: Slow
            jobEnvironments:
            - name: Slow
              script:
                actions:
                  onEnter: {command: sleep, args: ["30"], timeout: 1, cancelation: {mode: TERMINATE}}
                  onExit: {command: echo, args: ["left"], timeout: 5}
            steps:
            - name: S
              script:
                actions:
                  onRun: {command: echo, args: ["ran"]}
            """
        let task = try OpenJDConversion(try job(text)).submission.tasks[0]
        #expect(task.command.last == "openjd" && task.command[2].hasSuffix("exec 'echo' 'ran'\n"), "\(task.command)")
        let environment = try #require(try SessionPlan.from(env: task.env)?.environments.first)
        #expect(environment.enter.contains("timeout --foreground -s KILL 1 'sleep' '30'"), "\(environment.enter)")
        #expect(environment.exit?.contains("exec timeout --foreground -s TERM -k 5 5 'echo' 'left'") == true, "\(environment.exit ?? "")")
        let start = ContinuousClock.now
        let ran = try runCommand(["/bin/sh", "-c", environment.enter, "openjd-enter"],
                                 environment: ["PADDOCK_SESSION_DIR": FileManager.default.temporaryDirectory.path,
                                               "PADDOCK_SESSION_SNAPSHOT": "/dev/null", "PATH": "/usr/bin:/bin"], mergingErrors: true)
        let text2 = ran.output
        #expect(ContinuousClock.now - start < .seconds(20))
        #expect(ran.status == 137)
        #expect(text2.contains("openjd: environment 'Slow': onEnter failed (exit code 137)"), "\(text2)")
    }

    @Test func eachModeSetsTheGrace() throws {
        #expect(try grace(nil) == nil)
        #expect(try grace("{mode: TERMINATE}") == "0")
        #expect(try grace("{mode: NOTIFY_THEN_TERMINATE}") == "120")
        #expect(try grace("{mode: NOTIFY_THEN_TERMINATE, notifyPeriodInSeconds: 7}") == "7")
        #expect(StopGrace.requested(by: [StopGrace.variable: "7"]) == .seconds(7))
        #expect(StopGrace.requested(by: [StopGrace.variable: "601"]) == nil)
        #expect(StopGrace.requested(by: [StopGrace.variable: "x"]) == nil)
    }
}
