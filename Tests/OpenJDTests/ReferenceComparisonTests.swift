import Foundation
@testable import PaddockOpenJD
import Testing

/// Every fixture, expanded by this module and by the reference implementation (openjd-model, the
/// version scripts/setup-debian.sh pins) for the same parameter values: the job's name, its
/// parameter values, each step's task count and every task's parameter values must agree, and
/// where the reference refuses the template or the values, so must we.
///
/// The reference runs in a Python with openjd-model installed, named by PADDOCK_OPENJD_PYTHON
/// (`PADDOCK_TEST_DEPS=1 source scripts/setup-debian.sh` makes `.venv-openjd` and exports it).
@Suite("OpenJD against the reference implementation")
struct ReferenceComparisonTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var file: String
        var values: [String: String] = [:]
        var testDescription: String {
            ([file] + values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }).joined(separator: " ")
        }
    }

    static let cases: [Case] = [
        Case(file: "Fixtures/ui-controls-showcase.yaml",
             values: ["InputFilePicker": "/in/scene.blend", "OutputFilePicker": "/out/image.exr", "DirectoryPicker": "/work"]),
        Case(file: "Fixtures/ui-controls-showcase.yaml",
             values: ["InputFilePicker": "/in", "OutputFilePicker": "/out", "DirectoryPicker": "/d", "IntSpinner": "-12",
                      "FloatSpinner": "2.50", "StringDropdown": "FRIDAY", "IntDropdown": "9", "FloatDropdown": "1.2345",
                      "BoundedIntSpinner": "-100", "CheckBox": "False"]),
        Case(file: "Fixtures/ui-controls-showcase.yaml"),  // refused: no values for the paths
        Case(file: "Fixtures/ui-controls-showcase.yaml",
             values: ["InputFilePicker": "/in", "OutputFilePicker": "/out", "DirectoryPicker": "/d", "BoundedIntSpinner": "101"]),
        Case(file: "Fixtures/ui-controls-showcase.yaml",
             values: ["InputFilePicker": "/in", "OutputFilePicker": "/out", "DirectoryPicker": "/d", "IntDropdown": "4"]),
        Case(file: "Fixtures/host-requirements.yaml"),
        Case(file: "Fixtures/stdout-messages.yaml"),
        Case(file: "Fixtures/blender-ffmpeg.yaml"),
        Case(file: "Fixtures/blender-ffmpeg.yaml", values: ["EndFrame": "50", "Format": "JPEG", "JobName": "Shot 12"]),
        Case(file: "Fixtures/blender-ffmpeg.yaml", values: ["Format": "GIF"]),
        Case(file: "Fixtures/algorithmic-art.yaml",
             values: ["RenderScript": "/s/art.py", "OutputDirectory": "/out", "NumAnimationFrames": "4"]),
        Case(file: "Fixtures/ffmpeg.yaml", values: ["InputFile": "/in/seq.%04d.exr", "OutputDir": "/out", "EndFrame": "48"]),
        Case(file: "Fixtures/path-mapping.yaml"),
        Case(file: "Fixtures/task-parameter-definition-showcase.yaml", values: ["PathValue": "/mnt/drive/dir/path_file"]),
        Case(file: "Fixtures/task-parameter-definition-showcase.yaml",
             values: ["PathValue": "/p", "IntRange": "5-1:-2", "IntValue": "-3", "FloatValue": "2.50", "PathValueAsString": "rel/x"]),
        Case(file: "Fixtures/task-parameter-definition-showcase.yaml"),  // refused: no value for PathValue
        Case(file: "Templates/parameter-spaces.yaml"),
        Case(file: "Templates/parameter-spaces.yaml",
             values: ["First": "-7", "Last": "12", "Step": "8", "Scale": "0.125", "Shot": "sh020", "Scene": "/s/b.ma"]),
        Case(file: "Templates/parameter-spaces.yaml", values: ["First": "45"]),  // 45-20: refused
        Case(file: "Templates/parameter-spaces.yaml", values: ["Last": "55"]),  // overlaps 50: refused
        Case(file: "Templates/parameter-spaces.yaml", values: ["Step": "0"]),  // a zero step: refused
        Case(file: "Templates/numbers.yaml"),
        Case(file: "Templates/numbers.yaml", values: ["F": " 2.5 ", "I": " 7 ", "G": "-10"]),
        Case(file: "Templates/numbers.yaml", values: ["F": "1_0", "I": "1_2"]),
        Case(file: "Templates/numbers.yaml", values: ["F": "inf", "I": "+5"]),
        Case(file: "Templates/numbers.yaml", values: ["F": ".5", "G": "5."]),
        Case(file: "Templates/numbers.yaml", values: ["F": "0x10"]),  // refused
        Case(file: "Templates/numbers.yaml", values: ["I": "5.0"]),  // refused
        Case(file: "Templates/numbers.yaml", values: ["G": "-11"]),  // refused: below minValue
        Case(file: "Templates/numbers.yaml", values: ["I": "101"]),  // refused: above maxValue
        Case(file: "Templates/scopes.yaml"),
        Case(file: "Templates/scopes.yaml", values: ["Scene": "/mnt/x y", "Shot": "sh999"]),
        Case(file: "Templates/bad-scopes.yaml"),  // refused
        Case(file: "Templates/bad-task-scope.yaml"),  // refused
    ]

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()

    @Test(arguments: cases) func expansionMatchesTheReference(_ c: Case) throws {
        let reference = try Self.reference(c)
        let text = try String(contentsOf: Self.directory.appendingPathComponent(c.file), encoding: .utf8)
        let ours: OpenJDJob
        do {
            ours = try OpenJDJob(template: try template(text), values: c.values.mapValues(TemplateValue.string),
                                 taskLimit: 100_000)
        } catch let error as OpenJDError {
            #expect(reference["error"] != nil, "we refuse (\(error)) what the reference accepts")
            return
        }
        if let refusal = reference["error"] as? String {
            Issue.record("the reference refuses (\(refusal)); we accept")
            return
        }
        #expect(ours.name == reference["name"] as? String)
        let parameters = try #require(reference["parameters"] as? [String: String])
        #expect(ours.parameters.mapValues(\.value) == parameters)
        let steps = try #require(reference["steps"] as? [[String: Any]])
        #expect(ours.steps.map(\.template.name) == steps.map { $0["name"] as? String ?? "?" })
        for (mine, theirs) in zip(ours.steps, steps) {
            let tasks = try #require(theirs["tasks"] as? [[String: [String: String]]])
            #expect(mine.tasks.count == tasks.count, "step \(mine.template.name)")
            for (index, (task, expected)) in zip(mine.tasks, tasks).enumerated() {
                let values = Dictionary(uniqueKeysWithValues: task.map { ($0.name, ["type": $0.type.rawValue, "value": $0.value]) })
                #expect(values == expected, "step \(mine.template.name), task \(index)")
            }
        }
    }

    /// Range expressions made at random (seeded: the same every run), some valid, some not: ours
    /// and the reference's values agree, and where one refuses, so does the other.
    @Test func randomRangeExpressionsMatchTheReference() throws {
        var random = SeededRandom(seed: 20_231_109)
        var expressions: [String] = []
        for _ in 0..<600 {
            var elements: [String] = []
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let space = { (r: inout SeededRandom) in [" ", "", "", "\t"].randomElement(using: &r) ?? "" }
                let a = Int.random(in: -30...60, using: &random)
                let b = Int.random(in: -30...60, using: &random)
                switch Int.random(in: 0..<10, using: &random) {
                case 0..<3: elements.append("\(space(&random))\(a)\(space(&random))")
                case 3..<6: elements.append("\(a)\(space(&random))-\(space(&random))\(b)")
                case 6..<9:
                    let step = Int.random(in: -7...7, using: &random)
                    elements.append("\(space(&random))\(a)-\(b)\(space(&random)):\(space(&random))\(step)")
                default:
                    elements.append(["", "-", "1-", "2:3", "1--", "a", "1-2:", "+4", "1.5"].randomElement(using: &random) ?? "")
                }
            }
            expressions.append(elements.joined(separator: ","))
        }
        let theirs = try Self.referenceRanges(expressions)
        try #require(theirs.count == expressions.count)
        var agreed = (values: 0, refusals: 0)
        for (text, reference) in zip(expressions, theirs) {
            let ours: [Int]?
            do {
                ours = try IntRangeExpression(text, at: FieldPath("range")).values
            } catch {
                ours = nil
            }
            if let values = reference as? [Int] {
                #expect(ours == values, "'\(text)': the reference gives \(values)")
                if ours == values { agreed.values += 1 }
            } else {
                #expect(ours == nil, "'\(text)': the reference refuses (\(reference)), we give \(ours ?? [])")
                if ours == nil { agreed.refusals += 1 }
            }
        }
        // Both kinds are exercised.
        #expect(agreed.values > 100 && agreed.refusals > 100, "\(agreed)")
    }

    /// Parameter spaces made at random (seeded): up to five INT parameters of one to three values,
    /// combined by random products and associations with random spacing, some broken on purpose
    /// (a name twice, a name missing, an unknown name, a one-term association, lengths that differ):
    /// every task's values, in order, agree with the reference, and so do the refusals.
    @Test func randomCombinationsMatchTheReference() throws {
        var random = SeededRandom(seed: 2_023_09)
        var templates: [String] = []
        for _ in 0..<300 {
            let names = (0..<Int.random(in: 1...5, using: &random)).map { "P\($0)" }
            let same = Int.random(in: 1...3, using: &random)
            let definitions = names.enumerated().map { i, name in
                let count = Bool.random(using: &random) ? same : Int.random(in: 1...3, using: &random)
                return #"{"name": "\#(name)", "type": "INT", "range": "\#(i * 10 + 1)-\#(i * 10 + count)"}"#
            }
            var expression = Self.randomExpression(names.shuffled(using: &random), &random)
            switch Int.random(in: 0..<14, using: &random) {
            case 0: expression += " * \(names[0])"
            case 1 where names.count > 1: expression = names.dropLast().joined(separator: " * ")
            case 2: expression += " * Q"
            case 3: expression = "(\(expression))"
            case 4: expression += " *"
            default: break
            }
            let combination = Int.random(in: 0..<8, using: &random) == 0 ? ""
                : #", "combination": "\#(expression)""#
            templates.append(#"""
                {"specificationVersion": "jobtemplate-2023-09", "name": "C", "steps": [{"name": "S",
                 "parameterSpace": {"taskParameterDefinitions": [\#(definitions.joined(separator: ", "))]\#(combination)},
                 "script": {"actions": {"onRun": {"command": "echo"}}}}]}
                """#)
        }
        let output = try Self.run(["--templates"], input: Data("[\(templates.joined(separator: ","))]".utf8))
        let theirs = try #require(try JSONSerialization.jsonObject(with: output) as? [[String: Any]])
        try #require(theirs.count == templates.count)
        var agreed = (values: 0, refusals: 0)
        for (text, reference) in zip(templates, theirs) {
            let ours: [[String]]?
            do {
                let made = try OpenJDJob(template: try JobTemplate(json: Array(text.utf8)), values: [:], taskLimit: 100_000)
                ours = made.steps[0].tasks.map { $0.map { "\($0.name)=\($0.value)" } }
            } catch {
                ours = nil
            }
            if let steps = reference["steps"] as? [[String: Any]], let tasks = steps.first?["tasks"] as? [[String: [String: String]]] {
                // The reference lists a task's parameters in definition order too.
                let expected = tasks.map { task in
                    task.keys.sorted { $0.dropFirst().count == $1.dropFirst().count ? $0 < $1 : $0.count < $1.count }
                        .map { "\($0)=\(task[$0]?["value"] ?? "?")" }
                }
                #expect(ours == expected, "\(text)")
                if ours == expected { agreed.values += 1 }
            } else {
                #expect(ours == nil, "the reference refuses (\(reference["error"] ?? "?")), we accept: \(text)")
                if ours == nil { agreed.refusals += 1 }
            }
        }
        #expect(agreed.values > 60 && agreed.refusals > 60, "\(agreed)")
    }

    static func randomExpression(_ names: [String], _ random: inout SeededRandom) -> String {
        let space = { (r: inout SeededRandom) in Bool.random(using: &r) ? " " : "" }
        guard names.count > 1 else { return names.first ?? "" }
        let cut = Int.random(in: 1..<names.count, using: &random)
        let left = randomExpression(Array(names[..<cut]), &random)
        let right = randomExpression(Array(names[cut...]), &random)
        if Bool.random(using: &random) {
            return "\(left)\(space(&random))*\(space(&random))\(right)"
        }
        return "(\(space(&random))\(left)\(space(&random)),\(space(&random))\(right)\(space(&random)))"
    }

    static func referenceRanges(_ expressions: [String]) throws -> [Any] {
        let input = try JSONSerialization.data(withJSONObject: expressions)
        let output = try run(["--ranges"], input: input)
        return try #require(try JSONSerialization.jsonObject(with: output) as? [Any])
    }

    /// The reference's expansion, from Tests/OpenJDTests/openjd_reference.py.
    static func reference(_ c: Case) throws -> [String: Any] {
        let data = try run([directory.appendingPathComponent(c.file).path]
            + c.values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw Setup(message: "the reference script printed no JSON object")
        }
        return object
    }

    static func run(_ arguments: [String], input: Data? = nil) throws -> Data {
        guard let python = ProcessInfo.processInfo.environment["PADDOCK_OPENJD_PYTHON"], !python.isEmpty else {
            throw Setup(message: """
                PADDOCK_OPENJD_PYTHON is not set: these tests compare with the reference implementation \
                (openjd-model). Run `PADDOCK_TEST_DEPS=1 source scripts/setup-debian.sh` (it makes .venv-openjd \
                and exports PADDOCK_OPENJD_PYTHON), or point the variable at a Python with the pinned openjd-model.
                """)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [directory.appendingPathComponent("openjd_reference.py").path] + arguments
        let output = Pipe()
        let errors = Pipe()
        let stdin = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(input) }
        try stdin.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let stderr = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Setup(message: "the reference script failed (\(process.terminationStatus)): \(String(decoding: stderr, as: UTF8.self))")
        }
        return data
    }

    struct Setup: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}

/// A small deterministic generator (SplitMix64), so that a failure shows again on the next run.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
