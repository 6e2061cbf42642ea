import Foundation
import PaddockProtocol
import Testing

/// OpenJD path mapping rules (`pathmapping-1.0`, issue 18 item 6), applied as openjd-sessions does.
@Suite struct PathMappingTests {
    let posix = PathMappingRule(sourcePathFormat: .posix, sourcePath: "/mnt/source_directory", destinationPath: "/mnt/destination_directory")
    let windows = PathMappingRule(sourcePathFormat: .windows, sourcePath: "Z:\\Projects", destinationPath: "/mnt/projects")

    /// No rules are written out, not encoded: the same text the encoder writes, which reads back.
    @Test func noRulesAsJSON() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let encoded = String(decoding: try encoder.encode(PathMappingRules([])), as: UTF8.self)
        #expect(PathMappingRules([]).json == encoded)
        #expect(try Wire.decode(PathMappingRules.self, PathMappingRules([]).json).rules.isEmpty)
    }

    @Test func aRuleMapsWhatIsUnderItsSource() {
        #expect(posix.apply("/mnt/source_directory/shot/a.blend") == "/mnt/destination_directory/shot/a.blend")
        #expect(posix.apply("/mnt/source_directory") == "/mnt/destination_directory")
        #expect(posix.apply("/mnt/source_directory/") == "/mnt/destination_directory/")
        #expect(posix.apply("/mnt//source_directory/./x/../y") == "/mnt/destination_directory/x/../y")
        #expect(posix.apply("/mnt/source_directory2/x") == nil)
        #expect(posix.apply("/mnt/Source_directory/x") == nil)
        #expect(posix.apply("mnt/source_directory/x") == nil)
        #expect(windows.apply("Z:\\Projects\\shot\\a.blend") == "/mnt/projects/shot/a.blend")
        #expect(windows.apply("z:/projects/shot/") == "/mnt/projects/shot/")
        #expect(windows.apply("Y:\\Projects\\a") == nil)
        let unc = PathMappingRule(sourcePathFormat: .windows, sourcePath: "\\\\server\\share", destinationPath: "/net/share")
        #expect(unc.apply("\\\\SERVER\\share\\a\\b") == "/net/share/a/b")
    }

    @Test func theLongestSourceWins() {
        let rules = PathMappingRules([posix, PathMappingRule(sourcePathFormat: .posix, sourcePath: "/mnt/source_directory/special",
                                                             destinationPath: "/special")])
        #expect(rules.map("/mnt/source_directory/special/x") == "/special/x")
        #expect(rules.map("/mnt/source_directory/other") == "/mnt/destination_directory/other")
        #expect(rules.map("/elsewhere") == "/elsewhere")
    }

    @Test func rulesReadAndWriteTheirJSON() throws {
        let json = #"{"version": "pathmapping-1.0", "path_mapping_rules": [{"source_path_format": "posix", "source_path": "/a", "destination_path": "/b"}]}"#
        let rules = try Wire.decode(PathMappingRules.self, json)
        #expect(rules.rules == [PathMappingRule(sourcePathFormat: .posix, sourcePath: "/a", destinationPath: "/b")])
        #expect(rules.json == #"{"path_mapping_rules":[{"destination_path":"/b","source_path":"/a","source_path_format":"POSIX"}],"version":"pathmapping-1.0"}"#)
        #expect(Wire.rejection(PathMappingRules.self, #"{"version": "pathmapping-2.0", "path_mapping_rules": []}"#)?.field == "version")
        #expect(Wire.rejection(PathMappingRules.self,
            #"{"version": "pathmapping-1.0", "path_mapping_rules": [{"source_path_format": "DOS", "source_path": "/a", "destination_path": "/b"}]}"#)?
            .field == "path_mapping_rules[0].source_path_format")
        #expect(Wire.rejection(PathMappingRules.self,
            #"{"version": "pathmapping-1.0", "path_mapping_rules": [{"source_path_format": "POSIX", "source_path": "", "destination_path": "/b"}]}"#)?
            .field == "path_mapping_rules[0].source_path")
    }

    @Test func theAgentPreparesALaunch() throws {
        let agent = PathMappingRules([posix])
        let job = PathMappingRules([PathMappingRule(sourcePathFormat: .windows, sourcePath: "Z:\\", destinationPath: "/z")])
        let taskEnv = ["PADDOCK_RAW_PATH_J0": "/mnt/source_directory/scene.blend", "PADDOCK_RAW_PATH_T1": "Z:\\in\\a.exr",
                       PathMappingEnvironment.jobRules: job.json, "SCENE": "/mnt/source_directory/s"]
        var launch = PathMappingEnvironment.prepare(argv: ["render", "/mnt/source_directory/x"], environment: taskEnv, taskEnv: taskEnv,
                                                    cwd: "/mnt/source_directory", agent: agent)
        #expect(launch.environment["PADDOCK_PATH_J0"] == "/mnt/destination_directory/scene.blend")
        #expect(launch.environment["PADDOCK_PATH_T1"] == "/z/in/a.exr")
        #expect(launch.environment[PathMappingEnvironment.hasRules] == "true")
        let written = try Wire.decode(PathMappingRules.self, try #require(launch.environment[PathMappingEnvironment.rules]))
        #expect(written.rules == job.rules + agent.rules)
        // Without the opt-in, the command, cwd and other variables are left as they are.
        #expect(launch.argv == ["render", "/mnt/source_directory/x"] && launch.cwd == "/mnt/source_directory")
        #expect(launch.environment["SCENE"] == "/mnt/source_directory/s")
        var optedIn = taskEnv
        optedIn[PathMappingEnvironment.optIn] = "true"
        launch = PathMappingEnvironment.prepare(argv: ["render", "/mnt/source_directory/x", "--out=/mnt/source_directory/y"],
                                                environment: optedIn, taskEnv: optedIn, cwd: "/mnt/source_directory", agent: agent)
        #expect(launch.argv == ["render", "/mnt/destination_directory/x", "--out=/mnt/source_directory/y"])
        #expect(launch.cwd == "/mnt/destination_directory")
        #expect(launch.environment["SCENE"] == "/mnt/destination_directory/s")
        // No rules at all: false, and an empty rules file.
        launch = PathMappingEnvironment.prepare(argv: ["x"], environment: [:], taskEnv: [:], cwd: nil, agent: PathMappingRules([]))
        #expect(launch.environment[PathMappingEnvironment.hasRules] == "false")
        #expect(launch.environment[PathMappingEnvironment.rules] == #"{"path_mapping_rules":[],"version":"pathmapping-1.0"}"#)
    }

    @Test func aTaskOptsInWithPathMapping() throws {
        let spec = try Wire.decode(TaskSpec.self, #"{"name": "t", "command": ["ls"], "path_mapping": true}"#)
        #expect(spec.env == [PathMappingEnvironment.optIn: "true"])
        #expect(try Wire.decode(TaskSpec.self, #"{"name": "t", "command": ["ls"], "path_mapping": false}"#).env.isEmpty)
    }
}
