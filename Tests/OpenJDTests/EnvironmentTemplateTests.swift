import Foundation
@testable import PaddockOpenJD
import PaddockProtocol
import Testing

/// Environment templates (`environment-2023-09`, `paddock submit --env`): applied around a job as
/// the reference implementation applies them.
@Suite struct EnvironmentTemplateTests {
    static let job = """
        specificationVersion: jobtemplate-2023-09
        name: Job
        parameterDefinitions:
          - {name: Quality, type: INT, minValue: 1, maxValue: 100, default: 50}
          - {name: Renderer, type: STRING, allowedValues: [cycles, eevee, workbench]}
        jobEnvironments:
          - name: JobEnv
            variables: {J: "1"}
        steps:
          - name: S
            script: {actions: {onRun: {command: echo, args: ["{{Param.Quality}} {{Param.Renderer}}"]}}}
        """

    static func environment(_ name: String, parameters: String = "", body: String = "variables: {E: \"1\"}") -> String {
        """
        specificationVersion: environment-2023-09
        \(parameters)
        environment:
          name: \(name)
          \(body)
        """
    }

    func applied(_ environments: [String], to job: String = Self.job) throws -> JobTemplate {
        try JobTemplate(EnvironmentTemplate.apply(try environments.map(yamlValue), to: try yamlValue(job)))
    }

    @Test func theirEnvironmentsAreEnteredFirstInTheOrderGiven() throws {
        let template = try applied([
            Self.environment("Studio", parameters: "parameterDefinitions: [{name: Site, type: STRING, default: paris}]"),
            Self.environment("License"),
        ])
        #expect(template.jobEnvironments.map(\.name) == ["Studio", "License", "JobEnv"])
        #expect(template.parameterDefinitions.map(\.name) == ["Site", "Quality", "Renderer"])
        let job = try OpenJDJob(template: template, values: ["Renderer": .string("eevee")], taskLimit: 10)
        #expect(job.steps.count == 1)
    }

    @Test func definitionsOfOneNameMergeToTheNarrowest() throws {
        let template = try applied([Self.environment("Studio", parameters: """
            parameterDefinitions:
              - {name: Quality, type: INT, minValue: 10, maxValue: 200, default: 20}
              - {name: Renderer, type: STRING, allowedValues: [eevee, cycles, octane]}
            """)])
        let quality = try #require(template.parameterDefinitions.first { $0.name == "Quality" })
        #expect(quality.minValue == 10)
        #expect(quality.maxValue == 100)
        #expect(quality.defaultValue == "50", "the job's default, merged last, wins")
        let renderer = try #require(template.parameterDefinitions.first { $0.name == "Renderer" })
        #expect(Set(renderer.allowedValues ?? []) == ["eevee", "cycles"])
    }

    @Test func incompatibleDefinitionsAreRefusedWithTheReferencesWords() {
        #expect(openJDError { _ = try applied([Self.environment("E", parameters: "parameterDefinitions: [{name: Quality, type: STRING}]")]) }
            == "parameterDefinitions.Quality: Parameter type in 'EnvironmentTemplate for E' differs from expected type 'INT'")
        #expect(openJDError { _ = try applied([Self.environment("E", parameters: "parameterDefinitions: [{name: Renderer, type: STRING, allowedValues: [octane]}]")]) }
            == "parameterDefinitions.Renderer: The intersection of all allowedValues is empty. There are no values that can satisfy all constraints.")
        #expect(openJDError { _ = try applied([Self.environment("E", parameters: "parameterDefinitions: [{name: Quality, type: INT, minValue: 101}]")]) }
            == "parameterDefinitions.Quality: Merged constraint minValue (101) <= maxValue (100) is not satisfyable.")
    }

    @Test func anEnvironmentTemplateIsCheckedOnItsOwnAndItsErrorsSaySo() {
        #expect(openJDError { _ = try applied([Self.environment("E"), Self.environment("F", body: "variables: {\"1X\": \"1\"}")]) }?
            .hasPrefix("environments[1].environment.variables") == true)
        #expect(openJDError { _ = try applied([Self.environment("E", body: "variables: {E: \"{{Param.Missing}}\"}")]) }?
            .hasPrefix("environments[0].environment.variables.E:") == true)
        #expect(openJDError { _ = try applied(["specificationVersion: jobtemplate-2023-09\nenvironment: {name: E}"]) }
            == "environments[0].specificationVersion: must be 'environment-2023-09', not 'jobtemplate-2023-09'")
        #expect(openJDError { _ = try applied(["specificationVersion: environment-2023-09\nenvironment: {name: E}\nsteps: []"]) }
            == "environments[0].steps: unknown field (extra fields are not permitted)")
        #expect(openJDError { _ = try applied(["specificationVersion: environment-2023-09"]) }
            == "environments[0].environment: field required")
        #expect(openJDError { _ = try applied(Array(repeating: Self.environment("E"), count: 17)) }
            == "environments: at most 16 environment templates, not 17")
    }

    @Test func anEnvironmentNamedAsTheJobsOwnIsRefused() {
        #expect(openJDError { _ = try applied([Self.environment("JobEnv")]) } != nil)
    }

    /// The request the master takes (`openjd.environments`), converted into one job whose task
    /// enters the environment template's environment first.
    @Test func theRequestCarriesThem() throws {
        let job = try yamlValue(Self.job).json
        let environment = try yamlValue(Self.environment("Studio", parameters: "parameterDefinitions: [{name: Site, type: STRING}]",
            body: "script: {actions: {onEnter: {command: echo, args: [\"enter {{Param.Site}}\"]}}}")).json
        let body = #"{"openjd": {"template": \#(job), "parameters": {"Site": "lyon", "Renderer": "cycles"}, "environments": [\#(environment)]}}"#
        let converted = try #require(try OpenJDRequest.convert(json: Array(body.utf8)))
        let text = String(decoding: try PaddockProtocol.WireJSON.encoder().encode(converted.job.submission), as: UTF8.self)
        #expect(text.contains("enter lyon"), "\(text)")

        let missing = #"{"openjd": {"template": \#(job), "parameters": {"Renderer": "cycles"}, "environments": [\#(environment)]}}"#
        #expect(throws: OpenJDRequest.Refusal.self) { _ = try OpenJDRequest.convert(json: Array(missing.utf8)) }
        let wrong = #"{"openjd": {"template": \#(job), "environments": {"name": "E"}}}"#
        do {
            _ = try OpenJDRequest.convert(json: Array(wrong.utf8))
            Issue.record("a map of environments was taken")
        } catch {
            #expect(error.field == "openjd.environments")
        }
    }
}

extension ReferenceComparisonTests {
    /// Job parameter definitions merged across environment templates and a job, and values checked
    /// against the merge: the values a job gets, or a refusal, as the reference implementation's
    /// `preprocess_job_parameters(environment_templates=...)` gives them.
    @Test func environmentTemplatesMergeAsTheReferenceMerges() throws {
        let job = #"{"specificationVersion": "jobtemplate-2023-09", "name": "J", "parameterDefinitions": ["#
            + #"{"name": "Q", "type": "INT", "minValue": 1, "maxValue": 100, "default": 50},"#
            + #"{"name": "R", "type": "STRING", "allowedValues": ["a", "b", "c"]},"#
            + #"{"name": "P", "type": "FLOAT", "maxValue": 2.5}],"#
            + #""steps": [{"name": "S", "script": {"actions": {"onRun": {"command": "echo"}}}}]}"#
        let environments: [[String]] = [
            [],
            [#"{"name": "Q", "type": "INT", "minValue": 10, "default": 20}"#],
            [#"{"name": "Q", "type": "INT", "maxValue": 60}"#, #"{"name": "Site", "type": "STRING", "default": "x"}"#],
            [#"{"name": "R", "type": "STRING", "allowedValues": ["b", "c", "d"], "default": "c"}"#],
            [#"{"name": "R", "type": "STRING", "minLength": 2}"#],
            [#"{"name": "P", "type": "FLOAT", "minValue": 1.5, "default": 2}"#],
            [#"{"name": "Q", "type": "STRING"}"#],
            [#"{"name": "Q", "type": "INT", "minValue": 200}"#],
        ]
        let values: [[String: String]] = [[:], ["R": "a"], ["R": "b"], ["R": "c", "Q": "5"], ["R": "b", "Q": "70", "P": "1.75"],
                                          ["R": "c", "P": "2.5", "Site": "y"], ["R": "d"]]
        var cases: [(environments: [String], values: [String: String])] = []
        for (i, definitions) in environments.enumerated() {
            // One environment template, and the same definitions split over two (merged in order).
            let one = definitions.isEmpty ? [] : [#"{"specificationVersion": "environment-2023-09", "parameterDefinitions": [\#(definitions.joined(separator: ","))], "environment": {"name": "E\#(i)", "variables": {"A": "1"}}}"#]
            for value in values { cases.append((one, value)) }
        }
        cases.append(([#"{"specificationVersion": "environment-2023-09", "parameterDefinitions": [{"name": "Q", "type": "INT", "minValue": 10}], "environment": {"name": "E1", "variables": {"A": "1"}}}"#,
                       #"{"specificationVersion": "environment-2023-09", "parameterDefinitions": [{"name": "Q", "type": "INT", "maxValue": 40, "default": 30}], "environment": {"name": "E2", "variables": {"B": "1"}}}"#],
                      ["R": "a"]))
        let input = "[" + cases.map { c in
            let values = try? JSONSerialization.data(withJSONObject: c.values)
            return #"{"job": \#(job), "environments": [\#(c.environments.joined(separator: ","))], "values": \#(String(decoding: values ?? Data("{}".utf8), as: UTF8.self))}"#
        }.joined(separator: ",") + "]"
        let output = try Self.run(["--environments"], input: Data(input.utf8))
        let answers = try #require(try JSONSerialization.jsonObject(with: output) as? [[String: Any]])
        #expect(answers.count == cases.count)
        var accepted = 0, refused = 0
        for (c, answer) in zip(cases, answers) {
            let ours: [String: String]?
            do {
                let template = try JobTemplate(EnvironmentTemplate.apply(try c.environments.map { try TemplateValue(json: Data($0.utf8)) },
                                                                        to: try TemplateValue(json: Data(job.utf8))))
                ours = try OpenJDJob(template: template, values: c.values.mapValues(TemplateValue.string), taskLimit: 10).parameters.mapValues(\.value)
            } catch {
                ours = nil
            }
            if let theirs = answer["parameters"] as? [String: String] {
                accepted += 1
                #expect(ours == theirs, "\(c.environments) \(c.values)")
            } else {
                refused += 1
                #expect(ours == nil, "the reference refuses \(c.environments) \(c.values): \(answer["error"] ?? "")")
            }
        }
        #expect(accepted >= 8 && refused >= 8, "accepted \(accepted), refused \(refused)")
    }
}
