import PaddockProtocol

/// Turns an Open Job Description job into Paddock's `JobSubmission`: one task per element of each
/// step's parameter space. What Paddock cannot honour yet is refused (an error) when running
/// without it would do the wrong thing, and reported as a warning when it would only be looser.
public struct OpenJDConversion: Sendable {
    public var submission: JobSubmission
    public var warnings: [String]

    /// A template's JSON text and its job parameter values, converted in one call (what the
    /// master does for `POST /v1/jobs` with an `openjd` body).
    public init(template document: TemplateValue, values: [String: TemplateValue],
                pathMappingRules: PathMappingRules? = nil) throws(OpenJDError) {
        let template = try JobTemplate(document)
        let job = try OpenJDJob(template: template, values: values, taskLimit: Limits.tasksPerJob)
        try self.init(job, pathMappingRules: pathMappingRules)
    }

    /// `pathMappingRules`: the job's own rules, applied on the agent before the agent's.
    public init(_ job: OpenJDJob, pathMappingRules: PathMappingRules? = nil) throws(OpenJDError) {
        var warnings: [String] = []
        var tasks: [TaskSpec] = []
        // Every step's task names first: a step may depend on one written after it.
        var taskNames: [String: [String]] = [:]
        for step in job.steps {
            taskNames[step.template.name] = step.tasks.enumerated().map { index, parameters in
                Self.taskName(step.template.name, index: index, count: step.tasks.count, parameters: parameters)
            }
        }
        var bytes = 0
        for (i, step) in job.steps.enumerated() {
            let at = FieldPath("steps").index(i)
            let requirements = try Self.requirements(step, at: at.key("hostRequirements"), warnings: &warnings)
            // Task parameters reach the task as PADDOCK_PARAM_<NAME>, upper-cased: two names may not meet there.
            var variables: [String: String] = [:]
            for (j, definition) in (step.template.parameterSpace?.taskParameterDefinitions ?? []).enumerated() {
                if let other = variables.updateValue(definition.name, forKey: definition.name.uppercased()) {
                    throw at.key("parameterSpace").key("taskParameterDefinitions").index(j).key("name").error(
                        "'\(definition.name)' and '\(other)' would both be PADDOCK_PARAM_\(definition.name.uppercased()) "
                            + "in the task's environment: Paddock needs task parameter names that differ in more than case")
                }
            }
            var prerequisites: [String] = []
            for dependency in step.template.dependencies {
                prerequisites += taskNames[dependency] ?? []
            }
            // A Paddock task waits for at most `fanIn` others, and many tasks behind many would make a
            // quadratic number of edges: then the step waits behind barrier tasks (a no-op each,
            // needing no resources), each waiting for at most `fanIn` tasks, in as many layers as it takes.
            if prerequisites.count > Self.fanIn
                || (prerequisites.count > 1 && prerequisites.count * step.tasks.count > Self.directEdges) {
                var level = prerequisites
                var layer = 1
                repeat {
                    let groups = stride(from: 0, to: level.count, by: Self.fanIn).map {
                        Array(level[$0..<min($0 + Self.fanIn, level.count)])
                    }
                    level = groups.enumerated().map { k, group in
                        var barrier = TaskSpec(name: "\(step.template.name): waits for its dependencies (\(layer).\(k + 1))",
                                               command: ["/bin/sh", "-c", ":"])
                        barrier.requirements = TaskRequirements(resources: ResourceVector(cpus: 0))
                        barrier.dependsOn = group
                        tasks.append(barrier)
                        return barrier.name
                    }
                    layer += 1
                } while level.count > Self.fanIn
                prerequisites = level
            }
            let onRun = step.template.script.onRun
            let grace = Self.stopGrace(onRun.cancelation)
            let names = taskNames[step.template.name] ?? []
            var plan = try ScriptPlan(job, step: step, at: at)
            if let rules = pathMappingRules, !rules.rules.isEmpty { plan.pathEnv[PathMappingEnvironment.jobRules] = rules.json }
            for (index, parameters) in step.tasks.enumerated() {
                var task = try Self.task(plan, name: names[index], parameters: parameters)
                task.requirements = requirements
                task.timeout = onRun.timeout.map(Double.init)
                if let grace { task.env[StopGrace.variable] = grace }
                task.dependsOn = prerequisites
                bytes += task.command.reduce(0) { $0 + $1.utf8.count } + task.env.reduce(0) { $0 + $1.value.utf8.count }
                guard bytes <= Self.byteLimit else {
                    throw at.error("the job's commands come to more than \(Self.byteLimit >> 20) MiB "
                        + "(embedded files travel in each task's command); Paddock takes at most that much per job")
                }
                tasks.append(task)
            }
        }
        guard tasks.count <= Limits.tasksPerJob else {
            throw FieldPath("steps").error("the job has \(tasks.count) tasks; Paddock takes at most \(Limits.tasksPerJob) per job")
        }
        var submission = JobSubmission(name: String(job.name.prefix(Limits.nameLength)), tasks: tasks)
        // A step's `openjd_progress: 42.5` lines move its task's progress (a percentage).
        submission.progressRegex = #"^openjd_progress:\s*([0-9]+(?:\.[0-9]+)?)"#
        submission.labels = ["openjd": JobTemplate.specificationVersion]
        self.submission = submission
        self.warnings = warnings
    }

    /// `Render[3] Frame=3`: unique within the job (the index), the parameters for people.
    static func taskName(_ step: String, index: Int, count: Int, parameters: [OpenJDJob.TaskParameter]) -> String {
        guard count > 1 || !parameters.isEmpty else { return step }
        let values = parameters.map { "\($0.name)=\($0.value.replacingNewlines)" }.joined(separator: " ")
        return String("\(step)[\(index)] \(values)".prefix(Limits.nameLength))
    }

    /// A step's script made ready once: its format strings parsed, the values every task of the
    /// step shares in the symbol table, the embedded files' names.
    struct ScriptPlan {
        var symbols = SymbolTable()
        var command: [FormatString.Part]
        var args: [[FormatString.Part]]
        var files: [(filename: String, data: [FormatString.Part], runnable: Bool)] = []
        var usesRules: Bool
        /// What every task of the step gets in its environment for path mapping: the raw values of
        /// the job's PATH parameters (`PADDOCK_RAW_PATH_J<i>`), the job's rules.
        var pathEnv: [String: String] = [:]
        /// The job's environments then the step's, resolved (they do not depend on the task).
        var environments: [EnvironmentPlan] = []
        /// The step's session plan as its tasks carry it (`PADDOCK_SESSION`, JSON made once per step)
        /// when it has environments: its tasks then run in a session the agent keeps (entered once,
        /// shared, exited after its last task there).
        var session: String?
        /// Where the task's own embedded files go: the session directory for a task that is a
        /// session of its own; in a shared session, the task's own directory (`$PADDOCK_WORK_DIR`),
        /// so that two tasks running at once in one session do not write over each other's files.
        let taskFiles: ResolvedString.Piece
        let actionPath: FieldPath
        let argPaths: [FieldPath]
        let dataPaths: [FieldPath]

        init(_ job: OpenJDJob, step: OpenJDJob.Step, at path: FieldPath) throws(OpenJDError) {
            let script = step.template.script
            symbols.scopeNote = " (a step script has Param.*, RawParam.*, Task.Param.*, Task.RawParam.*, Task.File.* and Session.*)"
            for (i, (name, parameter)) in job.parameters.sorted(by: { $0.key < $1.key }).enumerated() {
                // A PATH parameter's value is mapped on the host that runs the task: the agent sets
                // PADDOCK_PATH_J<i> from PADDOCK_RAW_PATH_J<i>.
                if parameter.type == .path {
                    symbols["Param.\(name)"] = ResolvedString([.variable(PathMappingEnvironment.mappedPrefix + "J\(i)")])
                    pathEnv[PathMappingEnvironment.rawPrefix + "J\(i)"] = parameter.value
                } else {
                    symbols["Param.\(name)"] = ResolvedString([.text(parameter.value)])
                }
                symbols["RawParam.\(name)"] = ResolvedString([.text(parameter.value)])
            }
            symbols["Session.WorkingDirectory"] = ResolvedString([.sessionDirectory])
            symbols["Session.HasPathMappingRules"] = ResolvedString([.variable(PathMappingEnvironment.hasRules)])
            symbols["Session.PathMappingRulesFile"] = ResolvedString([.sessionDirectory, .text("/" + OpenJDConversion.rulesFile)])
            let shared = !job.template.jobEnvironments.isEmpty || !step.template.stepEnvironments.isEmpty
            taskFiles = shared ? .variable("PADDOCK_WORK_DIR") : .sessionDirectory
            let actionPath = path.key("script").key("actions").key("onRun")
            self.actionPath = actionPath
            argPaths = script.onRun.args.indices.map { actionPath.key("args").index($0) }
            dataPaths = script.embeddedFiles.indices.map { path.key("script").key("embeddedFiles").index($0).key("data") }
            var fileNames: [String: String] = [:]
            for (i, file) in script.embeddedFiles.enumerated() {
                let filename = file.filename ?? file.name
                if let clash = fileNames.first(where: { $0.value == filename }) {
                    throw path.key("script").key("embeddedFiles").index(i).error(
                        "embedded files \(clash.key) and \(file.name) have the same file name '\(filename)'")
                }
                fileNames[file.name] = filename
                symbols["Task.File.\(file.name)"] = ResolvedString([taskFiles, .text("/" + filename)])
                files.append((filename, try FormatString.parse(file.data, at: dataPaths[i]), file.runnable))
            }
            command = try FormatString.parse(script.onRun.command, at: actionPath.key("command"))
            var args: [[FormatString.Part]] = []
            for (i, arg) in script.onRun.args.enumerated() { args.append(try FormatString.parse(arg, at: argPaths[i])) }
            self.args = args
            usesRules = ([command] + args + files.map(\.data)).contains {
                $0.contains(.reference("Session.PathMappingRulesFile"))
            }
            // Environments: Param.*, RawParam.*, Session.* and their own Env.File.*.
            var hostSymbols = symbols
            hostSymbols.values = hostSymbols.values.filter { !$0.key.hasPrefix("Task.") }
            hostSymbols.scopeNote = " (an environment has Param.*, RawParam.*, Env.File.* and Session.*)"
            var taken = Set(fileNames.values)
            let scopes = job.template.jobEnvironments.enumerated().map { (FieldPath("jobEnvironments").index($0), $1) }
                + step.template.stepEnvironments.enumerated().map { (path.key("stepEnvironments").index($0), $1) }
            for (at, environment) in scopes {
                environments.append(try EnvironmentPlan(environment, symbols: hostSymbols, taken: &taken, at: at))
                usesRules = usesRules || environment.mentionsRulesFile
            }
            if shared {
                let plan = OpenJDConversion.session(key: step.template.name, environments: environments, rules: usesRules)
                let json = plan.json
                guard plan.environments.allSatisfy({ ([$0.enter] + ($0.exit.map { [$0] } ?? [])).allSatisfy { $0.utf8.count <= Limits.argLength } }),
                      json.utf8.count <= Limits.envValueLength else {
                    throw path.error("the step's environments take more than Paddock's \(Limits.envValueLength) bytes "
                        + "(their embedded files and scripts travel with each task)")
                }
                session = json
            }
        }
    }

    /// One environment of a task's session, resolved.
    struct EnvironmentPlan {
        var name: String
        var files: [(filename: String, data: ResolvedString, runnable: Bool)] = []
        var variables: [(name: String, value: ResolvedString)] = []
        var onEnter: [ResolvedString]?
        var onExit: [ResolvedString]?
        /// `timeout ...` words before an action with a `timeout` of its own (coreutils' timeout(1)).
        var onEnterLimit = ""
        var onExitLimit = ""

        init(_ environment: Environment, symbols base: SymbolTable, taken: inout Set<String>,
             at path: FieldPath) throws(OpenJDError) {
            name = environment.name
            var symbols = base
            for (i, file) in environment.embeddedFiles.enumerated() {
                let filename = file.filename ?? file.name
                guard taken.insert(filename).inserted else {
                    throw path.key("script").key("embeddedFiles").index(i).error(
                        "the file name '\(filename)' is already used by another embedded file of this task's session")
                }
                symbols["Env.File.\(file.name)"] = ResolvedString([.sessionDirectory, .text("/" + filename)])
            }
            for (i, file) in environment.embeddedFiles.enumerated() {
                let at = path.key("script").key("embeddedFiles").index(i).key("data")
                files.append((file.filename ?? file.name, try symbols.resolve(file.data, at: at), file.runnable))
            }
            for variable in environment.variables {
                variables.append((variable.name, try symbols.resolve(variable.value, at: path.key("variables").key(variable.name))))
            }
            func argv(_ action: Action?, _ key: String) throws(OpenJDError) -> [ResolvedString]? {
                guard let action else { return nil }
                let at = path.key("script").key("actions").key(key)
                var argv = [try symbols.resolve(action.command, at: at.key("command"))]
                for (i, arg) in action.args.enumerated() { argv.append(try symbols.resolve(arg, at: at.key("args").index(i))) }
                return argv
            }
            onEnter = try argv(environment.onEnter, "onEnter")
            onExit = try argv(environment.onExit, "onExit")
            onEnterLimit = OpenJDConversion.timeLimit(environment.onEnter)
            onExitLimit = OpenJDConversion.timeLimit(environment.onExit)
        }
    }

    /// One task: its argv (through a small `sh` prelude when it has embedded files or refers to
    /// the session directory), its parameters in the environment as `PADDOCK_PARAM_<NAME>` and in
    /// its `parameters` (raw values, as the template's author wrote them).
    static func task(_ plan: ScriptPlan, name: String, parameters: [OpenJDJob.TaskParameter]) throws(OpenJDError) -> TaskSpec {
        var symbols = plan.symbols
        var env = plan.pathEnv
        for (k, parameter) in parameters.enumerated() {
            if parameter.type == .path {
                symbols["Task.Param.\(parameter.name)"] = ResolvedString([.variable(PathMappingEnvironment.mappedPrefix + "T\(k)")])
                env[PathMappingEnvironment.rawPrefix + "T\(k)"] = parameter.value
            } else {
                symbols["Task.Param.\(parameter.name)"] = ResolvedString([.text(parameter.value)])
            }
            symbols["Task.RawParam.\(parameter.name)"] = ResolvedString([.text(parameter.value)])
        }
        var argv = [try symbols.resolve(plan.command, at: plan.actionPath.key("command"))]
        for (i, arg) in plan.args.enumerated() {
            argv.append(try symbols.resolve(arg, at: plan.argPaths[i]))
        }
        var files: [(filename: String, data: ResolvedString, runnable: Bool)] = []
        for (i, file) in plan.files.enumerated() {
            files.append((file.filename, try symbols.resolve(file.data, at: plan.dataPaths[i]), file.runnable))
        }
        // In a shared session the rules file is the session's, written when it is entered.
        let rules = plan.usesRules && plan.session == nil
        let plain = argv.compactMap(\.plain)
        // A session's action always goes through the prelude: it refuses to run outside its session.
        let command = files.isEmpty && !rules && plain.count == argv.count && plan.session == nil
            ? plain
            : ["/bin/sh", "-c", Self.prelude(files: files, rules: rules, argv: argv, taskFiles: plan.taskFiles,
                                              inSession: plan.session != nil), "openjd"]
        guard let program = command.first, !program.isEmpty else {
            throw plan.actionPath.key("command").error("the command resolves to an empty string")
        }
        guard command.count <= Limits.argvCount,
              command.allSatisfy({ $0.utf8.count <= Limits.argLength && !$0.contains("\0") }) else {
            throw plan.actionPath.error("the command and its embedded files take more than Paddock's \(Limits.argLength) bytes "
                + "per argument (embedded files travel in the task's command), or contain NUL")
        }
        var values: [String: String] = [:]
        for parameter in parameters {
            env["PADDOCK_PARAM_\(parameter.name.uppercased())"] = parameter.value
            values[parameter.name] = parameter.value
        }
        if let session = plan.session { env[SessionPlan.variable] = session }
        var spec = TaskSpec(name: name, command: command, env: env)
        spec.parameters = values  // shown in the task's view (`parameters`) and by `paddock tasks`
        return spec
    }

    static let rulesFile = "openjd-path-mapping.json"
    /// The most tasks one Paddock task may depend on (JobSubmission's bound on `depends_on`).
    static let fanIn = 1000
    /// Above this many task-to-task edges between two steps, a barrier task stands between them.
    static let directEdges = 10_000
    /// The converted job's commands and environments in all: a 1 MiB template must not become gigabytes.
    public static let byteLimit = 64 << 20

    /// The session directory in every script: `$PADDOCK_SESSION_DIR` (set by the agent), else the
    /// task's working directory (`$PADDOCK_WORK_DIR`), else the current one.
    static let sessionDirectoryLine = #"D="${PADDOCK_SESSION_DIR:-${PADDOCK_WORK_DIR:-$PWD}}""#

    /// `sh -c` text that writes the task's embedded files (into the session directory, or in a shared
    /// session the task's own: `taskFiles`) and the path mapping rules file, then `exec`s the action.
    /// `inSession`: the action of a shared session, which fails at once when its agent did not enter
    /// the session (an agent without sessions would run it without its environments).
    static func prelude(files: [(filename: String, data: ResolvedString, runnable: Bool)], rules: Bool,
                        argv: [ResolvedString], taskFiles: ResolvedString.Piece = .sessionDirectory,
                        inSession: Bool = false) -> String {
        var lines = [sessionDirectoryLine]
        if inSession { lines.append(outsideSessionLine) }
        if rules { lines.append(rulesFileLine) }
        lines += write(files, into: taskFiles)
        lines.append("exec " + argv.map(shellWord).joined(separator: " "))
        return lines.joined(separator: "\n") + "\n"
    }

    static let outsideSessionLine = #"[ -n "$\#(SessionPlan.directoryVariable)" ] || { echo "openjd: this task runs in its step's session, which its agent did not enter (an agent without OpenJD sessions)" >&2; exit 1; }"#

    static let rulesFileLine = "printf '%s' \"$\(PathMappingEnvironment.rules)\" > \"$D/\(rulesFile)\" || exit 1"

    /// Shell lines that write embedded files (read-only, or read and run) into `directory`.
    static func write(_ files: [(filename: String, data: ResolvedString, runnable: Bool)],
                      into directory: ResolvedString.Piece = .sessionDirectory) -> [String] {
        files.map { file in
            let target = shellWord(ResolvedString([directory, .text("/" + file.filename)]))
            return "rm -f \(target); printf '%s' \(shellWord(file.data)) > \(target) && chmod \(file.runnable ? "0500" : "0400") \(target) || exit 1"
        }
    }

    /// A step's session: for each environment, outermost first, the script that enters it and the one
    /// that exits it (`SessionPlan`), which the agent runs once per session, each in its own process.
    ///
    /// Entering writes the environment's files, exports its `variables`, runs its `onEnter` (whose
    /// `openjd_env: NAME=VALUE` and `openjd_unset_env: NAME` stdout lines set and unset variables for
    /// what follows), and saves the environment it leaves with `env -0` where the agent says
    /// (`$PADDOCK_SESSION_SNAPSHOT`): the agent starts the next environment, the session's actions
    /// and this environment's `onExit` with it. A failed `onEnter` fails the script with that reason
    /// on stderr. The path mapping rules file, when the session uses it, is written on entering the
    /// first environment.
    static func session(key: String, environments: [EnvironmentPlan], rules: Bool) -> SessionPlan {
        SessionPlan(key: String(key.prefix(Limits.nameLength)), environments: environments.enumerated().map { k, environment in
            let label = shellWord(ResolvedString([.text("'" + environment.name + "'")]))
            var lines = [sessionDirectoryLine]
            if rules && k == 0 { lines.append(rulesFileLine) }
            lines += write(environment.files)
            for variable in environment.variables {
                lines.append("export \(variable.name)=\(shellWord(variable.value))")
            }
            if let onEnter = environment.onEnter {
                let set = #""$D/.openjd-env-\#(k)""#
                let unset = #""$D/.openjd-unset-\#(k)""#
                lines.append("rm -f \(set) \(unset) \"$D/.openjd-rc\"")
                lines.append("{ \(environment.onEnterLimit)\(onEnter.map(shellWord).joined(separator: " ")); echo $? > \"$D/.openjd-rc\"; } | "
                    + #"while IFS= read -r l || [ -n "$l" ]; do printf '%s\n' "$l"; case "$l" in "#
                    + #"'openjd_env: '*) printf '%s\n' "${l#openjd_env: }" >> \#(set);; "#
                    + #"'openjd_redacted_env: '*) printf '%s\n' "${l#openjd_redacted_env: }" >> \#(set);; "#
                    + #"'openjd_unset_env: '*) printf '%s\n' "${l#openjd_unset_env: }" >> \#(unset);; esac; done"#)
                lines.append(#"rc=$(cat "$D/.openjd-rc" 2>/dev/null || echo 1)"#)
                lines.append(#"if [ "$rc" != 0 ]; then echo "openjd: environment "\#(label)": onEnter failed (exit code $rc)" >&2; exit "$rc"; fi"#)
                lines.append(#"if [ -f \#(set) ]; then while IFS= read -r kv; do n="${kv%%=*}"; case "$n" in ''|[0-9]*|*[!A-Za-z0-9_]*) ;; *) export "$kv";; esac; done < \#(set); fi"#)
                lines.append(#"if [ -f \#(unset) ]; then while IFS= read -r n; do case "$n" in ''|[0-9]*|*[!A-Za-z0-9_]*) ;; *) unset "$n";; esac; done < \#(unset); fi"#)
                lines.append("rm -f \(set) \(unset) \"$D/.openjd-rc\"")
            }
            lines.append(#"env -0 > "$\#(SessionPlan.snapshotVariable)" || exit 1"#)
            let exit = environment.onExit.map { onExit in
                [sessionDirectoryLine, "exec " + environment.onExitLimit + onExit.map(shellWord).joined(separator: " ")]
                    .joined(separator: "\n") + "\n"
            }
            return SessionPlan.Environment(name: environment.name, enter: lines.joined(separator: "\n") + "\n", exit: exit)
        })
    }

    /// An environment action's own `timeout`, as words before its command: coreutils' `timeout`
    /// stops it as its `cancelation` says (`TERMINATE`: SIGKILL; `NOTIFY_THEN_TERMINATE`: SIGTERM, then
    /// SIGKILL after its notify period, 30 s when not given, as the specification says for environment
    /// actions; none given: SIGTERM, then SIGKILL after 5 s), and the action fails (exit code 124, or
    /// 137 when killed). `--foreground` keeps it in the task's process group, which a cancel stops; what
    /// the action itself started is stopped with the task's process group when the task ends.
    static func timeLimit(_ action: Action?) -> String {
        guard let action, let seconds = action.timeout else { return "" }
        let signals = switch action.cancelation {
        case .terminate?: "-s KILL"
        case .notifyThenTerminate(let notify)?: "-s TERM -k \(notify ?? 30)"
        case nil: "-s TERM -k 5"
        }
        return "timeout --foreground \(signals) \(seconds) "
    }

    /// The stop grace an action's `cancelation` asks for (`StopGrace`): none said, the agent's own;
    /// `TERMINATE`, none (SIGKILL at once after the SIGTERM); `NOTIFY_THEN_TERMINATE`, its
    /// `notifyPeriodInSeconds` (120 when not given, as the specification says for a step's action).
    static func stopGrace(_ cancelation: Action.Cancelation?) -> String? {
        switch cancelation {
        case nil: nil
        case .terminate: "0"
        case .notifyThenTerminate(let seconds): String(seconds ?? 120)
        }
    }

    /// One shell word: text single-quoted, the session directory as `"$D"`.
    static func shellWord(_ value: ResolvedString) -> String {
        if value.pieces.isEmpty { return "''" }
        return value.pieces.map { piece in
            switch piece {
            case .sessionDirectory: #""$D""#
            case .variable(let name): "\"$" + name + "\""
            case .text(let text): "'" + text.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
            }
        }.joined()
    }

    /// `amount.worker.*` onto cpus, ram, gpus and disk (reserved: the minimum); `amount.worker.gpu.memory`
    /// and `amount.custom.*` onto range tags (`HostAmounts`: the host must have an amount in the range);
    /// attributes onto tags (`HostAttributes`). What no agent has leaves the task fitting no agent,
    /// which the job's warnings say.
    static func requirements(_ step: OpenJDJob.Step, at path: FieldPath,
                             warnings: inout [String]) throws(OpenJDError) -> TaskRequirements? {
        guard let host = step.template.hostRequirements else { return nil }
        var cpus = 1.0
        var ram: Int64 = 0
        var gpus: Int64 = 0
        var disk: Int64 = 0
        var tags: [String] = []
        let mib: Double = 1_048_576
        for (i, amount) in host.amounts.enumerated() {
            let at = path.key("amounts").index(i)
            let minimum = amount.min ?? 0
            switch amount.name.lowercased() {
            case "amount.worker.vcpu":
                guard minimum <= Limits.maxCPUs else { throw at.key("min").error("at most \(Int(Limits.maxCPUs)) vCPUs") }
                cpus = max(minimum, 1)
            case "amount.worker.memory":
                guard minimum * mib < Double(Int64.max / 2) else { throw at.key("min").error("too large") }
                ram = Int64((minimum * mib).rounded(.up))
            case "amount.worker.gpu":
                guard minimum <= Double(Limits.maxGPUs) else { throw at.key("min").error("at most \(Limits.maxGPUs) GPUs") }
                gpus = Int64(minimum.rounded(.up))
            case "amount.worker.disk.scratch":
                guard minimum * 1024 * mib < Double(Int64.max / 2) else { throw at.key("min").error("too large") }
                disk = Int64((minimum * 1024 * mib).rounded(.up))
            default:
                // Matched, not reserved: the bounds hold as written (gpu.memory, custom amounts).
                do throws(HostAmounts.Problem) {
                    tags.append(try HostAmounts.requirement(amount.name, min: amount.min, max: amount.max))
                } catch {
                    throw at.error(error.description)
                }
                continue
            }
            if amount.max != nil {
                warnings.append("\(at.key("max")): Paddock reserves the minimum and does not bound \(amount.name) from above")
            }
        }
        for (i, attribute) in step.attributes.enumerated() {
            let at = path.key("attributes").index(i)
            do throws(HostAttributes.Problem) {
                tags += try HostAttributes.requirement(attribute.name, anyOf: attribute.anyOf, allOf: attribute.allOf)
            } catch {
                throw at.error(error.description)
            }
        }
        tags = Array(Set(tags)).sorted()
        guard tags.count <= Limits.tagCount else { throw path.error("at most \(Limits.tagCount) attribute values and amounts") }
        return TaskRequirements(resources: ResourceVector(cpus: cpus, ram: ram, disk: disk, gpus: gpus), tags: tags)
    }
}

extension String {
    var replacingNewlines: String {
        String(map { $0.isNewline ? " " : $0 })
    }
}
