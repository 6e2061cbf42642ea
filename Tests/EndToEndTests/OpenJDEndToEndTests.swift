import Foundation
import PaddockClient
import PaddockProtocol
import Testing

/// Open Job Description templates on a real master and agent (issue 18): the specification's
/// parameter showcase through `paddock submit -p`, and a template with a parameter space, an
/// embedded file and a step dependency through the API's `openjd` body.
extension EndToEnd { @Suite struct OpenJDEndToEndTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("OpenJDTests/Fixtures")

    @Test func theShowcaseSamplePrintsItsValues() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("openjd", ["--cpus", "2", "--ram", "2GiB"])
        let file = Self.fixtures.appendingPathComponent("ui-controls-showcase.yaml").path
        let submitted = try await cli(farm, ["submit", file, "-p", "InputFilePicker=/in/scene.blend", "-p", "OutputFilePicker=/out/frame.exr",
                                       "-p", "DirectoryPicker=/projects/a b", "-p", "IntSpinner=-7", "--json"])
        let job = try WireJSON.decoder().decode(JobView.self, from: Data(submitted.utf8))
        #expect(job.name == "Job Template GUI Control Showcase")
        #expect(job.counts.total == 1)
        let tasks = try await farm.waitForJob(job.id)
        #expect(tasks.map(\.state) == [.succeeded])
        let log = try await farm.logs(try #require(tasks.first).id)
        // What the sample's script echoes, one value under each label.
        for expected in ["LineEditControl value:\nDefault line edit value.\n",
                         "MultiLineEditControl value:\nThis is a\ntext file with\nmultiple lines.\n\n",
                         "IntSpinner value:\n-7\n", "BigStepIntSpinner value:\n123\n",
                         "FloatSpinner value:\n1234.56789\n", "FloatSpinnerOne value:\n100000.01\n",
                         "StringDropdown value:\nWEDNESDAY\n", "IntDropdown value:\n7\n", "FloatDropdown value:\n3.26\n",
                         "InputFilePicker raw value:\n/in/scene.blend\nInputFilePicker value mapped locally:\n/in/scene.blend\n",
                         "DirectoryPicker raw value:\n/projects/a b\n"] {
            #expect(log.contains(expected), "\(expected) in:\n\(log)")
        }
    }

    @Test func aParameterSpaceWithDependenciesRunsThroughTheAPI() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("openjd", ["--cpus", "4", "--ram", "2GiB", "--attr", "farm=main"])
        try await eventually("the agent enrolled", timeout: 20) { try await farm.agent(named: "openjd") != nil }
        let template = #"""
            {"specificationVersion": "jobtemplate-2023-09", "name": "Shot {{Param.Shot}}",
             "parameterDefinitions": [{"name": "Shot", "type": "STRING", "allowedValues": ["sh010", "sh020"]},
                                      {"name": "Frames", "type": "STRING", "default": "1-3"}],
             "steps": [
              {"name": "Render",
               "parameterSpace": {"taskParameterDefinitions": [
                 {"name": "Frame", "type": "INT", "range": "{{Param.Frames}}"},
                 {"name": "Layer", "type": "STRING", "range": ["bg", "fg"]}]},
               "hostRequirements": {"amounts": [{"name": "amount.worker.vcpu", "min": 1}],
                                    "attributes": [{"name": "attr.custom.farm", "anyOf": ["main"]}]},
               "script": {"actions": {"onRun": {"command": "sh", "args": ["-c",
                 "echo frame {{Task.Param.Frame}} layer $PADDOCK_PARAM_LAYER of {{Param.Shot}}; sleep 0.2; touch $PADDOCK_WORK_DIR/../../rendered-{{Task.Param.Frame}}-{{Task.Param.Layer}}"]}}}},
              {"name": "Encode", "dependencies": [{"dependsOn": "Render"}],
               "script": {"actions": {"onRun": {"command": "bash", "args": ["{{Task.File.Encode}}"], "timeout": 60}},
                          "embeddedFiles": [{"name": "Encode", "type": "TEXT", "runnable": true,
                            "data": "echo encoding {{Param.Shot}} in {{Session.WorkingDirectory}}\nls $PADDOCK_WORK_DIR/../.. | grep -c rendered-\necho openjd_progress: 50\n"}]}}]}
            """#
        let job = try await farm.submitRaw(#"{"openjd": {"template": \#(template), "parameters": {"Shot": "sh020"}}, "priority": 5}"#)
        #expect(job.name == "Shot sh020")
        #expect(job.priority == 5)
        #expect(job.counts.total == 7)
        #expect(job.warnings.isEmpty, "\(job.warnings)")
        let tasks = try await farm.waitForJob(job.id)
        #expect(tasks.allSatisfy { $0.state == .succeeded }, "\(tasks.map { "\($0.name): \($0.state)" })")
        let render = tasks.filter { $0.name.hasPrefix("Render[") }
        #expect(render.allSatisfy { $0.requirements.tags == ["custom.farm:main"] })
        #expect(render.map(\.name).sorted() == ["Render[0] Frame=1 Layer=bg", "Render[1] Frame=1 Layer=fg",
                                                "Render[2] Frame=2 Layer=bg", "Render[3] Frame=2 Layer=fg",
                                                "Render[4] Frame=3 Layer=bg", "Render[5] Frame=3 Layer=fg"])
        let third = try #require(render.first { $0.name.hasPrefix("Render[3]") })
        #expect(third.env["PADDOCK_PARAM_FRAME"] == "2")
        #expect(third.parameters == ["Frame": "2", "Layer": "fg"], "the task view carries its parameter values")
        #expect(try await farm.logs(third.id) == "frame 2 layer fg of sh020\n")
        let encode = try #require(tasks.first { $0.name == "Encode" })
        #expect(encode.timeout == 60)
        #expect(encode.parameters == nil, "a step without a parameter space has none")
        let log = try await farm.logs(encode.id)
        // Every Render task had finished (6 files) when Encode ran in its own session directory.
        #expect(log.hasPrefix("encoding sh020 in \(farm.dir)/openjd/tasks/\(encode.id)-e"), "\(log)")
        #expect(log.hasSuffix("\n6\nopenjd_progress: 50\n"), "\(log)")
        #expect(encode.progress == 1)
    }

    @Test func anInvalidValueIsA400NamingTheFieldAndTheRule() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        let template = try String(contentsOf: Self.fixtures.appendingPathComponent("blender-ffmpeg.yaml"), encoding: .utf8)
        let file = farm.dir + "/blender.yaml"
        try template.write(toFile: file, atomically: true, encoding: .utf8)
        let refusals: [(String, String)] = [
            (#"{"openjd": {"template": {"specificationVersion": "jobtemplate-2023-09", "name": "x", "steps": [{"name": "S", "parameterSpace": {"taskParameterDefinitions": [{"name": "F", "type": "INT", "range": "9-1"}]}, "script": {"actions": {"onRun": {"command": "echo"}}}}]}}}"#,
             "openjd.template.steps[0].parameterSpace.taskParameterDefinitions[0].range"),
            (#"{"openjd": {"template": {"specificationVersion": "jobtemplate-2023-09", "name": "x", "parameterDefinitions": [{"name": "N", "type": "INT", "maxValue": 3}], "steps": [{"name": "S", "script": {"actions": {"onRun": {"command": "echo"}}}}]}, "parameters": {"N": 4}}}"#,
             "openjd.parameters.N"),
        ]
        for (body, field) in refusals {
            do {
                _ = try await farm.submitRaw(body)
                Issue.record("accepted: \(body)")
            } catch ClientError.api(let error) {
                #expect(error.status == 400 || error.code == "invalid_request")
                #expect(error.field == field, "\(error)")
                #expect(error.message.hasPrefix(field + ": "), "\(error)")
            }
        }
        // The CLI says the same and exits non-zero.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Farm.binary)
        process.arguments = ["submit", file, "-p", "Format=GIF", "--master", farm.url, "--token", Farm.admin]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus != 0)
        #expect(stderr.contains("parameters.Format: value (GIF) for parameter Format must be one of the allowed values"), "\(stderr)")
    }
} }

extension EndToEnd.OpenJDEndToEndTests {
    /// The specification's host-requirements sample: its amounts become the tasks' requirements and
    /// its attributes their tags; a step runs only on an agent with the attributes it asks for
    /// (`anyOf` honoured), and a step no agent fits says so.
    @Test func theHostRequirementsSampleRunsWhereItsAttributesAre() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        let path = try pythonPath(farm)
        try farm.startAgent("plain", ["--cpus", "2", "--ram", "2GiB"], environment: ["PATH": path])
        try await eventually("the agent enrolled", timeout: 20) { try await farm.agent(named: "plain") != nil }
        let plain = try #require(try await farm.agent(named: "plain"))
        #expect(plain.tags.contains("os.family:linux") && plain.tags.contains { $0.hasPrefix("cpu.arch:") }, "\(plain.tags)")
        let file = Self.fixtures.appendingPathComponent("host-requirements.yaml").path
        let said = try await cli(farm, ["submit", file])
        #expect(said.contains("2 task(s)"), "\(said)")
        #expect(!said.contains("attr.custom.host_config is not supported"), "\(said)")
        #expect(said.contains("warning: steps[1].hostRequirements.amounts[0].max:"), "\(said)")
        #expect(said.components(separatedBy: "1 queued task(s) fit no agent").count == 3, "\(said)")
        let page: Page<JobView> = try await farm.admin.call("GET", APIPath.jobs)
        let job = try #require(page.items.first).id
        var tasks = try await farm.tasks(job: job)
        #expect(tasks.map(\.name).sorted() == ["StepOne", "StepTwo"])
        let one = try #require(tasks.first { $0.name == "StepOne" })
        #expect(one.requirements.tags == ["any:custom.host_config:HostConfigA:HostConfigC", "any:os.family:linux:macos"])
        let two = try #require(tasks.first { $0.name == "StepTwo" })
        #expect(two.requirements.resources == ResourceVector(cpus: 4, ram: 8 << 30))
        #expect(two.requirements.tags == ["custom.host_config:HostConfigB", "os.family:linux"])
        // An agent with HostConfigC (one of StepOne's anyOf, declared in its config file) runs StepOne;
        // StepTwo still fits none.
        let config = farm.dir + "/configc.yaml"
        try "attr: [host_config=HostConfigC, site=paris]\n".write(toFile: config, atomically: true, encoding: .utf8)
        try farm.startAgent("configc", ["--cpus", "2", "--ram", "2GiB", "--config", config], environment: ["PATH": path])
        try await eventually("StepOne ran", timeout: 60) {
            try await farm.task(one.id).state == .succeeded
        }
        tasks = try await farm.tasks(job: job)
        let configc = try #require(try await farm.agent(named: "configc"))
        #expect(configc.tags.contains("custom.host_config:HostConfigC") && configc.tags.contains("custom.site:paris"), "\(configc.tags)")
        #expect(tasks.first { $0.name == "StepOne" }?.agent == configc.id)
        #expect(try await farm.logs(one.id) == "This is StepOne - it is light on resources\n")
        #expect(tasks.first { $0.name == "StepTwo" }?.fitsNoAgent == true)
    }
}

extension EndToEnd.OpenJDEndToEndTests {
    /// PATH parameters are made absolute by the CLI as the reference's client does: a relative
    /// default against the template's directory, a relative -p value against the current one.
    @Test func pathParametersAreMadeAbsoluteOnTheSubmittersSide() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        let file = Self.fixtures.appendingPathComponent("blender-ffmpeg.yaml").path
        let submitted = try await cli(farm, ["submit", file, "-p", "OutputDir=renders/../out", "-p", "EndFrame=24", "--json"])
        let job = try WireJSON.decoder().decode(JobView.self, from: Data(submitted.utf8))
        #expect(job.name == "Blender Scene Renderer")
        let tasks = try await farm.tasks(job: job.id)
        let render = try #require(tasks.first { $0.name == "RenderScene" })
        let script = render.command.joined(separator: " ")
        // PATH values travel raw in the task's environment; the agent maps them into PADDOCK_PATH_*.
        #expect(render.env.values.contains(Self.fixtures.path + "/scene/blender_scene.blend"), "\(render.env)")
        #expect(render.env.values.contains(FileManager.default.currentDirectoryPath + "/out"), "\(render.env)")
        #expect(script.contains(#"mkdir -p '"$PADDOCK_PATH_J"#), "\(script)")
        #expect(script.contains("--render-frame \"1..24\""), "\(script)")
        let encode = try #require(tasks.first { $0.name == "CreateVideoFromRender" })
        #expect(encode.state == .blocked)
    }
}

extension EndToEnd.OpenJDEndToEndTests {
    /// 101 tasks behind which 100 wait (10 100 edges): they wait behind one barrier task, which
    /// needs no resources and runs on a real agent like any task.
    @Test func manyBehindManyRunThroughABarrier() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("openjd", ["--cpus", "16", "--ram", "4GiB"])
        let template = #"""
            {"specificationVersion": "jobtemplate-2023-09", "name": "Barrier",
             "steps": [
              {"name": "A", "parameterSpace": {"taskParameterDefinitions": [{"name": "I", "type": "INT", "range": "1-101"}]},
               "script": {"actions": {"onRun": {"command": "sh", "args": ["-c", "touch $PADDOCK_WORK_DIR/../../a-{{Task.Param.I}}"]}}}},
              {"name": "B", "dependencies": [{"dependsOn": "A"}],
               "parameterSpace": {"taskParameterDefinitions": [{"name": "J", "type": "INT", "range": "1-100"}]},
               "script": {"actions": {"onRun": {"command": "sh", "args": ["-c", "ls $PADDOCK_WORK_DIR/../.. | grep -c '^a-'"]}}}}]}
            """#
        let job = try await farm.submitRaw(#"{"openjd": {"template": \#(template)}}"#)
        #expect(job.counts.total == 202)
        let tasks = try await farm.waitForJob(job.id, timeout: 120)
        #expect(tasks.allSatisfy { $0.state == .succeeded }, "\(tasks.filter { $0.state != .succeeded }.map(\.name))")
        let barrier = try #require(tasks.first { $0.name == "B: waits for its dependencies (1.1)" })
        #expect(barrier.requirements.resources == .zero)
        for task in tasks.filter({ $0.name.hasPrefix("B[") }).prefix(5) {
            #expect(try await farm.logs(task.id) == "101\n")
        }
    }
}

extension EndToEnd.OpenJDEndToEndTests {
    /// Job and step environments on a real agent: entered before the task's action, in order,
    /// with their variables and what `openjd_env:` set; exited after it, in reverse order.
    @Test func environmentsWrapTheTask() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("openjd", ["--cpus", "2", "--ram", "2GiB"])
        let template = #"""
            {"specificationVersion": "jobtemplate-2023-09", "name": "Envs",
             "jobEnvironments": [{"name": "Tools", "variables": {"TOOL": "v1"},
               "script": {"actions": {"onEnter": {"command": "sh", "args": ["-c", "echo enter $TOOL; echo openjd_env: LICENSE=42"]},
                                      "onExit": {"command": "sh", "args": ["-c", "echo exit $TOOL"]}}}}],
             "steps": [{"name": "S",
               "stepEnvironments": [{"name": "Scratch", "script": {"actions": {"onEnter": {"command": "bash", "args": ["{{Env.File.Setup}}"]}},
                 "embeddedFiles": [{"name": "Setup", "type": "TEXT", "data": "mkdir -p {{Session.WorkingDirectory}}/scratch && echo scratch ready\n"}]}}],
               "parameterSpace": {"taskParameterDefinitions": [{"name": "N", "type": "INT", "range": "1-2"}]},
               "script": {"actions": {"onRun": {"command": "sh", "args": ["-c", "echo run {{Task.Param.N}} $TOOL $LICENSE; ls -d scratch"]}}}}]}
            """#
        let job = try await farm.submitRaw(#"{"openjd": {"template": \#(template)}}"#)
        let tasks = try await farm.waitForJob(job.id)
        #expect(tasks.map(\.state) == [.succeeded, .succeeded])
        // One session for the step's two tasks: the task that entered it shows the onEnter's output.
        var logs: [String] = []
        for task in tasks {
            let n = task.env["PADDOCK_PARAM_N"] ?? "?"
            let log = try await farm.logs(task.id)
            #expect(log.hasSuffix("run \(n) v1 42\nscratch\n"), "\(log)")
            logs.append(log)
        }
        #expect(logs.filter { $0.hasPrefix("enter v1\nopenjd_env: LICENSE=42\nscratch ready\nrun ") }.count == 1, "\(logs)")
        // Exited after the session's last task (the linger), its output in the agent's log.
        try await eventually("the session was exited", timeout: 60) { farm.log("openjd").contains("onExit: exit v1") }
    }
}

extension EndToEnd.OpenJDEndToEndTests {
    /// `paddock submit JOB --env ENV -p ...`: an environment template's environment is entered
    /// before the job's own and exited after it, with its own parameter; a mistake in an environment
    /// template is said of its file.
    @Test func environmentTemplatesWrapTheJobsEnvironments() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("openjd", ["--cpus", "2", "--ram", "2GiB"])
        let dir = farm.dir + "/templates"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try """
            specificationVersion: jobtemplate-2023-09
            name: Wrapped
            jobEnvironments:
              - name: Job
                script: {actions: {onEnter: {command: sh, args: ["-c", "echo enter job"]}, onExit: {command: sh, args: ["-c", "echo exit job"]}}}
            steps:
              - name: S
                script: {actions: {onRun: {command: sh, args: ["-c", "echo run at $SITE"]}}}
            """.write(toFile: dir + "/job.yaml", atomically: true, encoding: .utf8)
        try """
            specificationVersion: environment-2023-09
            parameterDefinitions:
              - {name: Site, type: STRING, allowedValues: [paris, lyon]}
            environment:
              name: Studio
              variables: {SITE: "{{Param.Site}}"}
              script: {actions: {onEnter: {command: sh, args: ["-c", "echo enter studio"]}, onExit: {command: sh, args: ["-c", "echo exit studio"]}}}
            """.write(toFile: dir + "/studio.yaml", atomically: true, encoding: .utf8)
        let submitted = try await cli(farm, ["submit", dir + "/job.yaml", "--env", dir + "/studio.yaml", "-p", "Site=lyon", "--json"])
        let job = try WireJSON.decoder().decode(JobView.self, from: Data(submitted.utf8))
        let tasks = try await farm.waitForJob(job.id)
        #expect(tasks.map(\.state) == [.succeeded])
        #expect(try await farm.logs(tasks[0].id) == "enter studio\nenter job\nrun at lyon\n")
        try await eventually("the session was exited", timeout: 60) { farm.log("openjd").contains("onExit: exit studio") }
        let agentLog = farm.log("openjd")
        let exits = ["onExit: exit job", "onExit: exit studio"].compactMap { agentLog.range(of: $0)?.lowerBound }
        #expect(exits.count == 2 && exits[0] < exits[1], "innermost first")

        // A value the environment template does not allow, and a mistake in its file.
        let refused = try await EndToEnd.JobFileErrorTests.submit(farm, dir + "/job.yaml", ["--env", dir + "/studio.yaml", "-p", "Site=rome"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("Site"), "\(refused.stderr)")
        try """
            specificationVersion: environment-2023-09
            environment:
              name: Studio
              script: {actions: {onEnter: {comand: sh}}}
            """.write(toFile: dir + "/broken.yaml", atomically: true, encoding: .utf8)
        let broken = try await EndToEnd.JobFileErrorTests.submit(farm, dir + "/job.yaml", ["--env", dir + "/broken.yaml"])
        #expect(broken.status == 1)
        #expect(broken.stderr.contains(dir + "/broken.yaml: environment.script.actions.onEnter"), "\(broken.stderr)")
    }
}

extension EndToEnd.OpenJDEndToEndTests {
    /// `amount.custom.*` and `amount.worker.gpu.memory` (and a Paddock task's `amounts`): a task
    /// runs on an agent whose declared amount lies in its range; one no agent has in range is said
    /// to fit no agent.
    @Test func customAmountsPlaceTasksOnAgentsThatHaveThem() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("plain", ["--cpus", "2", "--ram", "2GiB"])
        try farm.startAgent("licensed", ["--cpus", "2", "--ram", "2GiB", "--amount", "licenses=4", "--amount", "gpu.memory=16384"])
        try await eventually("both agents enrolled", timeout: 30) { try await farm.agents().count == 2 }
        let licensed = try #require(try await farm.agent(named: "licensed"))
        #expect(licensed.tags.contains("amount:custom.licenses:4") && licensed.tags.contains("amount:gpu.memory:16384"), "\(licensed.tags)")
        let template = #"""
            {"specificationVersion": "jobtemplate-2023-09", "name": "Amounts",
             "steps": [{"name": "Fits", "hostRequirements": {"amounts": [{"name": "amount.custom.licenses", "min": 2, "max": 4},
                                                                          {"name": "amount.worker.gpu.memory", "min": 8192}]},
                        "script": {"actions": {"onRun": {"command": "sh", "args": ["-c", "echo on $PADDOCK_AGENT_NAME"]}}}},
                       {"name": "TooMany", "hostRequirements": {"amounts": [{"name": "amount.custom.licenses", "min": 8}]},
                        "script": {"actions": {"onRun": {"command": "true"}}}}]}
            """#
        let job = try await farm.submitRaw(#"{"openjd": {"template": \#(template)}}"#)
        let tasks = try await farm.tasks(job: job.id)
        let fits = try #require(tasks.first { $0.name == "Fits" })
        #expect(fits.requirements.tags == ["range:custom.licenses:2:4", "range:gpu.memory:8192:"])
        try await eventually("Fits ran", timeout: 60) { try await farm.task(fits.id).state == .succeeded }
        #expect(try await farm.logs(fits.id) == "on licensed\n")
        let warnings = try await farm.job(job.id).warnings
        #expect(warnings.contains { $0.contains("1 queued task(s) fit no agent") && $0.contains("range:custom.licenses:8:") }, "\(warnings)")

        // Paddock's own requirements take the same amounts.
        let own = try await farm.submitRaw(#"{"name": "own", "tasks": [{"name": "t", "command": ["sh", "-c", "echo on $PADDOCK_AGENT_NAME"], "requirements": {"amounts": {"licenses": 3}}}]}"#)
        let ran = try await farm.waitForJob(own.id, timeout: 60)
        #expect(ran.map(\.state) == [.succeeded])
        #expect(try await farm.logs(ran[0].id) == "on licensed\n")
    }
}
