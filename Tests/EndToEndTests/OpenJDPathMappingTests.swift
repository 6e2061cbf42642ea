import Foundation
import PaddockClient
import PaddockProtocol
import Testing

/// Path mapping on a real agent (issue 18, item 6): the agent's rules (`--path-mapping FILE`) and
/// the job's, PATH values mapped where the task runs, the rules file, and Paddock's own tasks
/// opting in with `path_mapping: true`.
extension EndToEnd.OpenJDEndToEndTests {
    func rulesFile(_ farm: Farm) throws -> (path: String, rules: PathMappingRules) {
        let dest = farm.dir + "/dest"
        try FileManager.default.createDirectory(atPath: dest, withIntermediateDirectories: true)
        let rules = PathMappingRules([
            PathMappingRule(sourcePathFormat: .posix, sourcePath: "/mnt/source_directory", destinationPath: "/mnt/destination_directory"),
            PathMappingRule(sourcePathFormat: .posix, sourcePath: "/nonexistent-src", destinationPath: dest),
        ])
        let path = farm.dir + "/rules.json"
        try Data(rules.json.utf8).write(to: URL(fileURLWithPath: path))
        return (path, rules)
    }

    /// The specification's path-mapping sample, unmodified: it prints the agent's rules, and says
    /// there are none on an agent without.
    @Test func thePathMappingSamplePrintsTheAgentsRules() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        let (path, rules) = try rulesFile(farm)
        try farm.startAgent("mapped", ["--cpus", "2", "--ram", "2GiB", "--path-mapping", path])
        let file = Self.fixtures.appendingPathComponent("path-mapping.yaml").path
        let job = try WireJSON.decoder().decode(JobView.self, from: Data(try await cli(farm, ["submit", file, "--json"]).utf8))
        var tasks = try await farm.waitForJob(job.id)
        #expect(tasks.map(\.state) == [.succeeded])
        let printed = try await farm.logs(try #require(tasks.first).id)
        #expect(try WireJSON.decoder().decode(PathMappingRules.self, from: Data(printed.utf8)) == rules, "\(printed)")
        try await farm.terminate("mapped")
        try farm.startAgent("plain", ["--cpus", "2", "--ram", "2GiB"])
        let again = try WireJSON.decoder().decode(JobView.self, from: Data(try await cli(farm, ["submit", file, "--json"]).utf8))
        tasks = try await farm.waitForJob(again.id)
        #expect(try await farm.logs(try #require(tasks.first).id) == "No path mapping rules defined for this Session\n")
        // Rules the job carries (`paddock submit --path-mapping-rules`) apply on any agent.
        let withRules = try WireJSON.decoder().decode(JobView.self, from: Data(
            try await cli(farm, ["submit", file, "--path-mapping-rules", path, "--json"]).utf8))
        tasks = try await farm.waitForJob(withRules.id)
        let carried = try await farm.logs(try #require(tasks.first).id)
        #expect(try WireJSON.decoder().decode(PathMappingRules.self, from: Data(carried.utf8)) == rules, "\(carried)")
    }

    /// PATH parameters are mapped by the agent's rules and the job's own (given through the API);
    /// RawParam keeps the value as submitted.
    @Test func pathParametersAreMappedWhereTheTaskRuns() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        let (path, _) = try rulesFile(farm)
        try farm.startAgent("mapped", ["--cpus", "2", "--ram", "2GiB", "--path-mapping", path])
        let template = #"""
            {"specificationVersion": "jobtemplate-2023-09", "name": "Mapped",
             "parameterDefinitions": [{"name": "Scene", "type": "PATH"}, {"name": "Out", "type": "PATH"}],
             "steps": [{"name": "S", "script": {"actions": {"onRun": {"command": "sh", "args": ["-c",
               "echo {{Param.Scene}} {{RawParam.Scene}} {{Param.Out}} {{Session.HasPathMappingRules}}"]}}}}]}
            """#
        let rules = #"{"version": "pathmapping-1.0", "path_mapping_rules": [{"source_path_format": "WINDOWS", "source_path": "Z:\\renders", "destination_path": "/farm/renders"}]}"#
        let job = try await farm.submitRaw(#"{"openjd": {"template": \#(template), "parameters": {"Scene": "/mnt/source_directory/shot.blend", "Out": "z:\\Renders\\sh010"}, "path_mapping_rules": \#(rules)}}"#)
        let tasks = try await farm.waitForJob(job.id)
        #expect(tasks.map(\.state) == [.succeeded])
        #expect(try await farm.logs(tasks[0].id)
                == "/mnt/destination_directory/shot.blend /mnt/source_directory/shot.blend /farm/renders/sh010 true\n")
    }

    /// A Paddock task with `path_mapping: true`: its cwd, arguments and environment are mapped (by
    /// rules the agent's config file names).
    @Test func aPaddockTaskOptsIntoPathMapping() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        let (path, _) = try rulesFile(farm)
        let config = farm.dir + "/agent.yaml"
        try "path-mapping: \(path)\n".write(toFile: config, atomically: true, encoding: .utf8)
        try farm.startAgent("mapped", ["--cpus", "2", "--ram", "2GiB", "--config", config])
        let body = #"""
            {"name": "mapped", "tasks": [
              {"name": "on", "path_mapping": true, "cwd": "/nonexistent-src", "env": {"SCENE": "/mnt/source_directory/a.blend"},
               "command": ["sh", "-c", "echo \"$1\" \"$SCENE\"; pwd", "sh", "/mnt/source_directory/b"]},
              {"name": "off", "env": {"SCENE": "/mnt/source_directory/a.blend"},
               "command": ["sh", "-c", "echo \"$1\" \"$SCENE\" $PADDOCK_HAS_PATH_MAPPING_RULES", "sh", "/mnt/source_directory/b"]}]}
            """#
        let job = try await farm.submitRaw(body)
        let tasks = try await farm.waitForJob(job.id)
        #expect(tasks.map(\.state) == [.succeeded, .succeeded])
        let on = try #require(tasks.first { $0.name == "on" })
        #expect(on.env["PADDOCK_PATH_MAPPING"] == "true")
        #expect(try await farm.logs(on.id)
                == "/mnt/destination_directory/b /mnt/destination_directory/a.blend\n\(farm.dir)/dest\n")
        let off = try #require(tasks.first { $0.name == "off" })
        #expect(try await farm.logs(off.id) == "/mnt/source_directory/b /mnt/source_directory/a.blend true\n")
    }
}

extension EndToEnd.OpenJDEndToEndTests {
    /// The specification's task parameter showcase, unmodified, on an agent with the rule its
    /// comments run it with: the PATH step prints the mapped and raw values they promise.
    @Test func theTaskParameterShowcasePrintsMappedPaths() async throws {
        let farm = try Farm()
        try await farm.startMaster()
        let rules = PathMappingRules([PathMappingRule(sourcePathFormat: .posix, sourcePath: "/mnt/drive", destinationPath: "/mnt/remapped_drive")])
        let path = farm.dir + "/rules.json"
        try Data(rules.json.utf8).write(to: URL(fileURLWithPath: path))
        try farm.startAgent("mapped", ["--cpus", "8", "--ram", "2GiB", "--path-mapping", path])
        let file = Self.fixtures.appendingPathComponent("task-parameter-definition-showcase.yaml").path
        let job = try WireJSON.decoder().decode(JobView.self, from: Data(
            try await cli(farm, ["submit", file, "-p", "PathValue=/mnt/drive/dir/path_file", "--json"]).utf8))
        let tasks = try await farm.waitForJob(job.id, timeout: 300)
        #expect(tasks.allSatisfy { $0.state == .succeeded })
        var printed: [String] = []
        for task in tasks where task.name.hasPrefix("List of path values[") { printed.append(try await farm.logs(task.id)) }
        #expect(printed.sorted() == [
            "Mapped Path: /mnt/remapped_drive/dir/file1  --  Raw Value: /mnt/drive/dir/file1\n",
            "Mapped Path: /mnt/remapped_drive/dir/path_file  --  Raw Value: /mnt/drive/dir/path_file\n",
            "Mapped Path: /mnt/remapped_drive/dir/string_file  --  Raw Value: /mnt/drive/dir/string_file\n",
        ])
        let strings = try #require(tasks.first { $0.name.hasPrefix("List of string values[1]") })
        #expect(try await farm.logs(strings.id) == "two, three, four\n")
    }
}
