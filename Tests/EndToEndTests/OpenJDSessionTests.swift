import Foundation
import PaddockClient
import PaddockProtocol
import Testing

/// OpenJD sessions on a real master and agent (issue 18): the tasks of a step that an agent runs
/// share one session, its environments entered once before the first and exited once after the
/// last, with their variables and its working directory.
extension EndToEnd { @Suite struct OpenJDSessionTests {
    /// A job environment and a step environment that note their enter and exit in `marks`, around a
    /// step of `tasks` tasks; each action notes its values there and in its log.
    static func template(marks: String, tasks: Int = 4, action: String = "", name: String = "Sessions") -> String {
        #"""
        {"specificationVersion": "jobtemplate-2023-09", "name": "\#(name)",
         "jobEnvironments": [{"name": "Tools", "variables": {"TOOL": "v1"},
           "script": {"actions": {"onEnter": {"command": "sh", "args": ["-c", "echo enter Tools >> \#(marks); echo openjd_env: LICENSE=42"]},
                                  "onExit": {"command": "sh", "args": ["-c", "echo exit Tools $TOOL $LICENSE >> \#(marks); echo left Tools"]}}}}],
         "steps": [{"name": "S",
           "stepEnvironments": [{"name": "Scratch", "variables": {"SCRATCH": "{{Session.WorkingDirectory}}/scratch"},
             "script": {"actions": {"onEnter": {"command": "sh", "args": ["-c", "mkdir $SCRATCH && echo enter Scratch >> \#(marks)"]},
                                    "onExit": {"command": "sh", "args": ["-c", "echo exit Scratch $LICENSE >> \#(marks)"]}}}}],
           "parameterSpace": {"taskParameterDefinitions": [{"name": "N", "type": "INT", "range": "1-\#(tasks)"}]},
           "script": {"actions": {"onRun": {"command": "sh", "args": ["-c",
             "\#(action)echo run {{Task.Param.N}} $TOOL $LICENSE {{Session.WorkingDirectory}} $(pwd) >> \#(marks); ls -d $SCRATCH >/dev/null && echo task {{Task.Param.N}} $TOOL $LICENSE"]}}}}]}
        """#
    }

    static func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Entered once, exited once after every task (the linger), in the specification's order; every
    /// task saw the variables (an `openjd_env` one too) and the one session directory.
    @Test(arguments: [1, 2])
    func aStepsTasksShareOneSession(slots: Int) async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("openjd", ["--cpus", "2", "--slots", "\(slots)", "--ram", "2GiB", "--session-linger", "10s"])
        let marks = farm.dir + "/marks"
        let job = try await farm.submitRaw(#"{"openjd": {"template": \#(Self.template(marks: marks))}}"#)
        let tasks = try await farm.waitForJob(job.id, timeout: 120)
        #expect(tasks.map(\.state) == Array(repeating: .succeeded, count: 4))
        // The session lingers: its environments are still entered when the job is done.
        #expect(!Self.lines(marks).contains { $0.hasPrefix("exit") }, "\(Self.lines(marks))")
        try await eventually("the session was exited", timeout: 90) { Self.lines(marks).last?.hasPrefix("exit Tools") == true }
        let lines = Self.lines(marks)
        #expect(lines.count == 8, "\(lines)")
        #expect(Array(lines.prefix(2)) == ["enter Tools", "enter Scratch"])
        #expect(Array(lines.suffix(2)) == ["exit Scratch 42", "exit Tools v1 42"])
        let runs = lines.dropFirst(2).dropLast(2)
        #expect(Set(runs.map { $0.split(separator: " ")[1] }) == ["1", "2", "3", "4"], "\(lines)")
        // One session directory, the working directory of every action.
        let directories = Set(runs.map { $0.split(separator: " ").dropFirst(4).joined(separator: " ") })
        #expect(directories.count == 1, "\(directories)")
        let directory = try #require(directories.first).split(separator: " ").map(String.init)
        #expect(directory.count == 2 && directory[0] == directory[1], "\(directory)")
        #expect(runs.allSatisfy { $0.contains(" v1 42 ") }, "\(lines)")
        // The task that entered shows the onEnter's output; the others only their action's.
        var entering = 0
        for task in tasks {
            let log = try await farm.logs(task.id)
            let n = task.env["PADDOCK_PARAM_N"] ?? "?"
            #expect(log.hasSuffix("task \(n) v1 42\n"), "\(log)")
            if log.contains("openjd_env: LICENSE=42") { entering += 1 } else { #expect(log == "task \(n) v1 42\n") }
        }
        #expect(entering == 1)
        // The session directory is gone with the session.
        #expect(!FileManager.default.fileExists(atPath: directory[0]))
    }

    /// Each (job, step) has its own session; an onEnter that fails fails its task with the reason,
    /// and the next task of the step enters again.
    @Test func eachStepHasItsSessionAndAFailedEnterIsTriedAgain() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        // A linger long enough that A's two tasks share a session on a busy machine.
        try farm.startAgent("openjd", ["--cpus", "1", "--slots", "1", "--ram", "2GiB", "--session-linger", "8s"])
        let marks = farm.dir + "/marks"
        let flag = farm.dir + "/flaky-failed"
        let template = #"""
            {"specificationVersion": "jobtemplate-2023-09", "name": "Steps",
             "jobEnvironments": [{"name": "Tools",
               "script": {"actions": {"onEnter": {"command": "sh", "args": ["-c", "echo enter Tools $PADDOCK_TASK_NAME >> \#(marks)"]},
                                      "onExit": {"command": "sh", "args": ["-c", "echo exit Tools $PADDOCK_TASK_NAME >> \#(marks)"]}}}}],
             "steps": [
              {"name": "A", "parameterSpace": {"taskParameterDefinitions": [{"name": "N", "type": "INT", "range": "1-2"}]},
               "script": {"actions": {"onRun": {"command": "sh", "args": ["-c", "echo run A >> \#(marks)"]}}}},
              {"name": "B", "dependencies": [{"dependsOn": "A"}],
               "stepEnvironments": [{"name": "Flaky", "script": {"actions": {"onEnter": {"command": "sh", "args": ["-c",
                 "if [ -e \#(flag) ]; then echo enter Flaky >> \#(marks); else touch \#(flag); echo not today; exit 3; fi"]}}}}],
               "parameterSpace": {"taskParameterDefinitions": [{"name": "N", "type": "INT", "range": "1-2"}]},
               "script": {"actions": {"onRun": {"command": "sh", "args": ["-c", "echo run B >> \#(marks)"]}}}}]}
            """#
        let job = try await farm.submitRaw(#"{"openjd": {"template": \#(template)}, "max_attempts": 1}"#)
        let tasks = try await farm.waitForJob(job.id, timeout: 120)
        let b = tasks.filter { $0.name.hasPrefix("B[") }
        #expect(tasks.filter { $0.name.hasPrefix("A[") }.map(\.state) == [.succeeded, .succeeded])
        let failed = try #require(b.first { $0.state == .failed }, "\(b.map(\.state))")
        #expect(failed.reason == "openjd: environment 'Flaky': onEnter failed (exit code 3)")
        #expect(try await farm.logs(failed.id).contains("not today\nopenjd: environment 'Flaky': onEnter failed (exit code 3)\n"))
        #expect(b.filter { $0.state == .succeeded }.count == 1, "\(b.map(\.state))")
        try await eventually("every session was exited", timeout: 90) {
            Self.lines(marks).filter { $0.hasPrefix("exit Tools") }.count == 3
        }
        let lines = Self.lines(marks)
        // A's session: entered once, by its first task; exited after its two runs.
        let enters = lines.filter { $0.hasPrefix("enter Tools") }
        #expect(enters.count == 3, "\(lines)")  // A's session, B's failed one, B's second
        let a = try #require(enters.first { $0.contains(" A[") })
        let aExit = try #require(lines.firstIndex(of: a.replacingOccurrences(of: "enter", with: "exit")))
        #expect(lines.prefix(aExit).filter { $0 == "run A" }.count == 2, "\(lines)")
        // B's failed session exited its job environment at once, before B's second try entered.
        let bEnters = enters.filter { $0.contains(" B[") }
        #expect(bEnters.count == 2, "\(lines)")
        let firstBExit = try #require(lines.firstIndex(of: bEnters[0].replacingOccurrences(of: "enter", with: "exit")))
        #expect(firstBExit < (lines.firstIndex(of: bEnters[1]) ?? 0), "\(lines)")
        #expect(lines.filter { $0 == "enter Flaky" }.count == 1 && lines.filter { $0 == "run B" }.count == 1, "\(lines)")
    }

    /// A graceful stop (SIGTERM) exits the open sessions before the agent ends.
    @Test func aStoppingAgentExitsItsSessions() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("openjd", ["--cpus", "2", "--ram", "2GiB", "--session-linger", "10m"])
        let marks = farm.dir + "/marks"
        let job = try await farm.submitRaw(#"{"openjd": {"template": \#(Self.template(marks: marks, tasks: 2))}}"#)
        #expect(try await farm.waitForJob(job.id, timeout: 120).map(\.state) == [.succeeded, .succeeded])
        #expect(!Self.lines(marks).contains { $0.hasPrefix("exit") })
        let took = try await farm.terminate("openjd", within: .seconds(30))
        #expect(took != nil, "the agent ended within its deadline")
        #expect(Array(Self.lines(marks).suffix(2)) == ["exit Scratch 42", "exit Tools v1 42"], "\(Self.lines(marks))")
        #expect(farm.log("openjd").contains("session j1 'S' onExit: left Tools"), "the exit's output is in the agent's log")
    }

    /// Cancelling a job stops its task's action; its session is exited (after the linger: the
    /// agent is not told that the job has nothing left for it).
    @Test func cancellingTheJobExitsItsSession() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("openjd", ["--cpus", "2", "--ram", "2GiB", "--session-linger", "3s"])
        let marks = farm.dir + "/marks"
        let started = farm.dir + "/started"
        let template = Self.template(marks: marks, tasks: 1, action: "touch \(started); sleep 300; ", name: "Cancelled")
        let job = try await farm.submitRaw(#"{"openjd": {"template": \#(template)}}"#)
        try await eventually("the action runs", timeout: 60) { FileManager.default.fileExists(atPath: started) }
        _ = try await farm.admin.raw("POST", APIPath.job(job.id, "cancel"))
        #expect(try await farm.waitForJob(job.id, timeout: 60).map(\.state) == [.cancelled])
        try await eventually("the session was exited", timeout: 60) {
            Self.lines(marks) == ["enter Tools", "enter Scratch", "exit Scratch 42", "exit Tools v1 42"]
        }
    }
} }

extension EndToEnd.OpenJDSessionTests {
    /// Cancelling one task stops its action only: the session stays open for the step's next task.
    @Test func cancellingATaskKeepsItsSession() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("openjd", ["--cpus", "1", "--slots", "1", "--ram", "2GiB", "--session-linger", "10m"])
        let marks = farm.dir + "/marks"
        let started = farm.dir + "/started"
        let template = Self.template(marks: marks, tasks: 2,
                                     action: "if [ {{Task.Param.N}} = 1 ]; then touch \(started); sleep 300; fi; ", name: "OneCancelled")
        let job = try await farm.submitRaw(#"{"openjd": {"template": \#(template)}}"#)
        try await eventually("the first action runs", timeout: 60) { FileManager.default.fileExists(atPath: started) }
        let first = try #require(try await farm.tasks(job: job.id).first { $0.env["PADDOCK_PARAM_N"] == "1" })
        _ = try await farm.admin.raw("POST", APIPath.task(first.id) + "/cancel")
        let tasks = try await farm.waitForJob(job.id, timeout: 120)
        #expect(Set(tasks.map(\.state)) == [.cancelled, .succeeded], "\(tasks.map(\.state))")
        #expect(Self.lines(marks).filter { $0.hasPrefix("enter") } == ["enter Tools", "enter Scratch"], "entered once")
        #expect(Self.lines(marks).contains { $0.hasPrefix("run 2 v1 42") }, "\(Self.lines(marks))")
        #expect(!Self.lines(marks).contains { $0.hasPrefix("exit") }, "the session stays open")
    }

    /// A drained agent exits its idle sessions at once.
    @Test func drainingExitsIdleSessions() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("openjd", ["--cpus", "2", "--ram", "2GiB", "--session-linger", "10m"])
        let marks = farm.dir + "/marks"
        let job = try await farm.submitRaw(#"{"openjd": {"template": \#(Self.template(marks: marks, tasks: 1))}}"#)
        #expect(try await farm.waitForJob(job.id, timeout: 120).map(\.state) == [.succeeded])
        let agent = try #require(try await farm.agent(named: "openjd"))
        _ = try await cli(farm, ["drain", agent.id.description])
        try await eventually("the session was exited", timeout: 60) { Self.lines(marks).last == "exit Tools v1 42" }
        #expect(Self.lines(marks) == ["enter Tools", "enter Scratch", "run 1 v1 42 \(Self.lines(marks)[2].split(separator: " ").dropFirst(4).joined(separator: " "))",
                                      "exit Scratch 42", "exit Tools v1 42"])
    }
}

extension EndToEnd.OpenJDSessionTests {
    /// `openjd_redacted_env: NAME=VALUE` in an onEnter sets NAME for the session; VALUE is masked in
    /// the task logs (the line itself and later output) and in the onExit output of the agent's log.
    @Test func redactedVariablesStayOutOfTheLogs() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("openjd", ["--cpus", "1", "--slots", "1", "--ram", "2GiB", "--session-linger", "10s"])
        let template = #"""
            {"specificationVersion": "jobtemplate-2023-09", "name": "Secret",
             "jobEnvironments": [{"name": "Vault",
               "script": {"actions": {"onEnter": {"command": "sh", "args": ["-c", "echo openjd_redacted_env: TOKEN=hunter2; echo entered with hunter2"]},
                                      "onExit": {"command": "sh", "args": ["-c", "echo leaving with $TOKEN"]}}}}],
             "steps": [{"name": "S", "parameterSpace": {"taskParameterDefinitions": [{"name": "N", "type": "INT", "range": "1-2"}]},
               "script": {"actions": {"onRun": {"command": "sh", "args": ["-c", "echo token $TOKEN; printf 'len %s\\n' ${#TOKEN}"]}}}}]}
            """#
        let job = try await farm.submitRaw(#"{"openjd": {"template": \#(template)}}"#)
        let tasks = try await farm.waitForJob(job.id, timeout: 120)
        #expect(tasks.map(\.state) == [.succeeded, .succeeded])
        var logs: [String] = []
        for task in tasks { logs.append(try await farm.logs(task.id)) }
        #expect(logs.filter { $0 == "openjd_redacted_env: TOKEN=********\nentered with ********\ntoken ********\nlen 7\n" }.count == 1, "\(logs)")
        #expect(logs.filter { $0 == "token ********\nlen 7\n" }.count == 1, "\(logs)")
        try await eventually("the session was exited", timeout: 60) { farm.log("openjd").contains("onExit: leaving with ********") }
        #expect(!farm.log("openjd").contains("hunter2"))
    }
}

extension EndToEnd.OpenJDSessionTests {
    /// Under `--task-user`, a session's scripts run as the task user too, in a directory it owns.
    @Test(.enabled(if: getuid() == 0))
    func aSessionRunsAsTheTaskUser() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("guarded", ["--cpus", "1", "--slots", "1", "--ram", "2GiB", "--task-user", "nobody", "--session-linger", "10s"])
        let template = #"""
            {"specificationVersion": "jobtemplate-2023-09", "name": "AsNobody",
             "jobEnvironments": [{"name": "Tools",
               "script": {"actions": {"onEnter": {"command": "sh", "args": ["-c", "echo enter as $(id -u); echo openjd_env: LICENSE=42; touch made-on-enter"]},
                                      "onExit": {"command": "sh", "args": ["-c", "echo exit as $(id -u) $LICENSE"]}}}}],
             "steps": [{"name": "S", "parameterSpace": {"taskParameterDefinitions": [{"name": "N", "type": "INT", "range": "1-2"}]},
               "script": {"actions": {"onRun": {"command": "sh", "args": ["-c", "ls made-on-enter && echo run as $(id -u) $LICENSE"]}}}}]}
            """#
        let job = try await farm.submitRaw(#"{"openjd": {"template": \#(template)}}"#)
        let tasks = try await farm.waitForJob(job.id, timeout: 120)
        #expect(tasks.map(\.state) == [.succeeded, .succeeded])
        var logs: [String] = []
        for task in tasks { logs.append(try await farm.logs(task.id)) }
        #expect(logs.allSatisfy { $0.hasSuffix("made-on-enter\nrun as 65534 42\n") }, "\(logs)")
        #expect(logs.filter { $0.hasPrefix("enter as 65534\n") }.count == 1, "\(logs)")
        try await eventually("the session was exited", timeout: 60) { farm.log("guarded").contains("onExit: exit as 65534 42") }
    }
}

extension EndToEnd.OpenJDSessionTests {
    /// A failed onExit is an agent exception; the tasks that succeeded stay succeeded.
    @Test func aFailedOnExitIsReportedAsAnException() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        try farm.startAgent("openjd", ["--cpus", "1", "--ram", "2GiB", "--session-linger", "1s"])
        let template = #"""
            {"specificationVersion": "jobtemplate-2023-09", "name": "BadExit",
             "jobEnvironments": [{"name": "Leaky", "script": {"actions": {"onExit": {"command": "sh", "args": ["-c", "echo cannot clean up; exit 4"]}}}}],
             "steps": [{"name": "S", "script": {"actions": {"onRun": {"command": "true"}}}}]}
            """#
        let job = try await farm.submitRaw(#"{"openjd": {"template": \#(template)}}"#)
        #expect(try await farm.waitForJob(job.id, timeout: 120).map(\.state) == [.succeeded])
        let agent = try #require(try await farm.agent(named: "openjd"))
        var found: ExceptionView?
        try await eventually("the failed onExit is an exception of the agent", timeout: 60) {
            let page: Page<ExceptionView> = try await farm.admin.call("GET", APIPath.exceptions(agent.id))
            found = page.items.first { $0.type == "openjd_on_exit" }
            return found != nil
        }
        #expect(found?.message == "openjd: environment 'Leaky': onExit failed (exit code 4)")
        #expect(farm.log("openjd").contains("onExit: cannot clean up"))
        #expect(try await farm.job(job.id).state == .succeeded)
    }
}
