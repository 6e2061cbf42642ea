import ArgumentParser
import Foundation
import PaddockClient
import PaddockProtocol

/// `paddock watch JOB`: a live progress bar with counts per state, until the job ends.
struct WatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch", abstract: "Show a job's progress live until it ends (exit 0 when it succeeded).")
    @Argument(help: "A job id (j12).") var job: String
    @Option(help: "Seconds between refreshes.") var interval: Double = 0.5
    @OptionGroup var client: ClientOptions

    func run() async throws {
        guard let id = JobID(job) else { throw ValidationError("'\(job)' is not a job id (e.g. j12)") }
        guard interval >= 0.05, interval <= 60 else { throw ValidationError("--interval is between 0.05 and 60 seconds") }
        let terminal = isatty(STDOUT_FILENO) == 1
        while true {
            let view: JobView = try await cli { try await client.client().call("GET", APIPath.job(id)) }
            let line = Self.render(view)
            // On a terminal the bar redraws in place; in a log, one line per change.
            FileHandle.standardOutput.write(Data((terminal ? "\r\u{1B}[K" + line : line + "\n").utf8))
            if [.succeeded, .failed, .cancelled].contains(view.state) {
                if terminal { FileHandle.standardOutput.write(Data("\n".utf8)) }
                if view.state != .succeeded { throw ExitCode.failure }
                return
            }
            try await Task.sleep(for: .milliseconds(Int(interval * 1000)))
        }
    }

    static func render(_ job: JobView, width: Int = 30) -> String {
        let progress = min(1, max(0, job.progress))
        let filled = Int((progress * Double(width)).rounded(.down))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let counts = TaskState.allCases.filter { job.counts[$0] > 0 }.map { "\($0.rawValue) \(job.counts[$0])" }
        return "\(job.id) [\(bar)] \(String(format: "%3.0f%%", progress * 100)) \(job.state.rawValue): "
            + counts.joined(separator: ", ")
    }
}
