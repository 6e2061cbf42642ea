import ArgumentParser
import Foundation

/// `paddock-bench`: starts masters and agents on loopback and reports the figures of docs/ARCHITECTURE.md §9.
@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paddock-bench",
        abstract: "Paddock's benchmark harness: real masters and agents on loopback, figures as a table and as JSON.",
        discussion: "Measurements: " + Measurements.all.map(\.name).joined(separator: ", "))

    @Flag(help: "Tiny sizes (seconds, not minutes): proves the harness produces figures, not that they are good.")
    var smoke = false
    @Option(help: "Where to write the JSON results.")
    var json = "bench-results.json"
    @Option(help: "Repeat each measurement this many times; the table shows median, min and max.")
    var runs = 1
    @Option(help: "Run only these measurements (comma-separated names).")
    var only: String?
    @Option(help: "Largest claim-latency queue (default 1000000; e.g. 100000 to skip the 1M fill).")
    var maxQueue: Int?
    @Option(help: "Simulated idle agents for the footprint measurement (default 2000; 50 with --smoke).")
    var idleAgents: Int?
    @Flag(help: "Keep each farm's directory (logs, SQLite) under the scratch dir.")
    var keep = false
    @Option(help: "Prefetched leases the real agents keep beyond their slots (their --prefetch: auto, the agent's default, or a number).")
    var agentPrefetch: String = "auto"

    func validate() throws {
        guard runs >= 1, runs <= 50 else { throw ValidationError("--runs is between 1 and 50") }
        guard agentPrefetch == "auto" || Int(agentPrefetch).map({ (0...1024).contains($0) }) == true else {
            throw ValidationError("--agent-prefetch is auto or a number between 0 and 1024")
        }
        let known = Set(Measurements.all.map(\.name))
        for name in selectedNames where !known.contains(name) {
            throw ValidationError("no measurement '\(name)'; there are: \(Measurements.all.map(\.name).joined(separator: ", "))")
        }
    }

    var selectedNames: [String] {
        only.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? Measurements.all.map(\.name)
    }

    func run() async throws {
        var sizes = smoke ? Sizes.smoke : Sizes.full
        if let idleAgents { sizes.idleAgents = max(1, idleAgents) }
        if let maxQueue { sizes.claimQueues = sizes.claimQueues.filter { $0 <= maxQueue } }
        let root = NSTemporaryDirectory() + "paddock-bench-\(ProcessInfo.processInfo.processIdentifier)"
        var context = BenchContext(binary: Farm.locateBinary(), root: root, keepFiles: keep, sizes: sizes)
        context.agentPrefetch = agentPrefetch
        let selected = Measurements.all.filter { selectedNames.contains($0.name) }
        BenchContext.say("paddock-bench: \(selected.map(\.name).joined(separator: ", ")); \(runs) run(s)\(smoke ? ", smoke" : "")")
        BenchContext.say("  paddock: \(context.binary)")

        let start = ContinuousClock.now
        var perRun: [[Figure]] = []
        var failures: [String] = []
        for run in 1...runs {
            var figures: [Figure] = []
            for measurement in selected {
                BenchContext.say("run \(run)/\(runs): \(measurement.name) — \(measurement.summary)")
                do {
                    let (produced, seconds) = try await timed { try await measurement.run(context) }
                    for figure in produced { BenchContext.say("    \(figure.name): \(Report.format(figure.value)) \(figure.unit)") }
                    BenchContext.say("    (\(String(format: "%.1f", seconds)) s)")
                    figures += produced
                } catch {
                    BenchContext.say("    FAILED: \(error)")
                    failures.append("run \(run) \(measurement.name): \(error)")
                }
            }
            perRun.append(figures)
        }
        if !keep { try? FileManager.default.removeItem(atPath: root) }

        let report = Report(generatedAt: Date(), command: CommandLine.arguments.joined(separator: " "), smoke: smoke,
                            runs: runs, durationSeconds: (ContinuousClock.now - start).seconds,
                            machine: .current(), figures: Summary.gather(perRun), failures: failures)
        try report.write(json: json)
        print(report.table)
        print("JSON: \(json)")
        let empty = report.figures.filter { $0.median == nil }.map(\.name)
        if !failures.isEmpty || report.figures.isEmpty || !empty.isEmpty {
            if !empty.isEmpty { BenchContext.say("no figure for: \(empty.joined(separator: ", "))") }
            throw ExitCode(1)
        }
    }
}

/// What every measurement is given.
struct BenchContext: Sendable {
    let binary: String
    let root: String
    let keepFiles: Bool
    let sizes: Sizes
    var agentPrefetch = "auto"

    /// Progress goes to stderr; stdout carries the table.
    static func say(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }
    func log(_ line: String) { Self.say(line) }
}

/// How big each measurement is.
struct Sizes: Sendable {
    var trueTasks: Int
    var sleepTasks: Int
    var submitTasks: Int
    var latencySamples: Int
    var claimQueues: [Int]
    var claimSamples: Int
    var placementTasks: Int
    var placementAgents: Int
    var talkbackSamples: Int
    var idleAgents: Int
    var settleSeconds: Int
    var idleWindowSeconds: Int
    /// One-task jobs submitted among the idle crowd (`footprint`), one at a time.
    var herdJobs: Int = 50
    /// How long a fresh process is left alone before its RSS is read.
    var quietSeconds: Int
    /// `stores`: /bin/true tasks per setup, real agents (4 slots each), claim-latency queue.
    var storeTasks: Int
    var storeAgents: Int
    var storeClaimQueue: Int
    /// `soak`: jobs × tasks each, and how many times the master is killed.
    var soakJobs: Int = 20
    var soakTasksPerJob: Int = 1000
    var soakMasterKills: Int = 30
    /// `claims`: how long the master is watched idle with the largest queue.
    var queueIdleSeconds: Int = 10

    static let full = Sizes(trueTasks: 1000, sleepTasks: 1000, submitTasks: 100_000, latencySamples: 100,
                            claimQueues: [1000, 100_000, 1_000_000], claimSamples: 200, placementTasks: 10_000,
                            placementAgents: 32, talkbackSamples: 50, idleAgents: 2000, settleSeconds: 5,
                            idleWindowSeconds: 60, quietSeconds: 3, storeTasks: 1000, storeAgents: 4,
                            storeClaimQueue: 1000)
    static let smoke = Sizes(trueTasks: 20, sleepTasks: 32, submitTasks: 1000, latencySamples: 5, claimQueues: [1000],
                             claimSamples: 20, placementTasks: 200, placementAgents: 8, talkbackSamples: 5,
                             idleAgents: 50, settleSeconds: 1, idleWindowSeconds: 2, herdJobs: 3, quietSeconds: 1,
                             storeTasks: 20, storeAgents: 2, storeClaimQueue: 100,
                             soakJobs: 4, soakTasksPerJob: 25, soakMasterKills: 3, queueIdleSeconds: 1)
}

/// The registry of measurements, in the order a full run makes them.
enum Measurements {
    struct Entry: Sendable {
        let name: String
        let summary: String
        let run: @Sendable (BenchContext) async throws -> [Figure]
    }

    static let all: [Entry] = [
        Entry(name: "throughput", summary: "/bin/true end to end, single and bulk, 2 and 16 slots", run: throughput),
        Entry(name: "sleep", summary: "sleep 0.1 × N on 16 slots against the ideal", run: sleepWall),
        Entry(name: "submit", summary: "tasks accepted per second for one big job", run: submitThroughput),
        Entry(name: "latency", summary: "submit-to-start p50/p99 on an idle farm", run: submitToStart),
        Entry(name: "claims", summary: "claim latency with growing queues", run: claimLatency),
        Entry(name: "placements", summary: "placements per second to simulated agents", run: placements),
        Entry(name: "talkback", summary: "command posted → applied by a real agent", run: talkback),
        Entry(name: "footprint", summary: "RSS idle; master RSS and CPU with many idle agents", run: footprint),
        Entry(name: "stores", summary: "tasks/s and claim p50/p99: SQLite, PostgreSQL, 3 masters on PostgreSQL behind HAProxy",
              run: stores),
        Entry(name: "soak", summary: "short tasks while the master is SIGKILLed again and again, an agent SIGKILLed, one SIGTERMed",
              run: soak),
    ]
}
