import Foundation
import PaddockProtocol

/// Latencies of single events on an otherwise idle farm.
extension Measurements {
    /// From the submit call to the child process running: each task is `date +%s.%N`, whose
    /// own output (read back from the task's log) says when the child ran.
    static func submitToStart(_ context: BenchContext) async throws -> [Figure] {
        let samples = try await withFarm(context, "latency") { farm in
            try await farm.startMaster()
            try await farm.startAgent("agent", slots: 2)
            let admin = farm.admin
            let text = #"{"name":"stamp","tasks":[{"name":"stamp","command":["date","+%s.%N"]}]}"#
            var samples: [Double] = []
            for _ in 0..<context.sizes.latencySamples {
                let submitted = Date().timeIntervalSince1970
                let job = try await admin.submit(json: text)
                guard let task = job.taskIDs?.first else { throw BenchError("the job came back without its task id") }
                try await until("\(task) succeeded", timeout: 30, every: 0.01) {
                    let view: TaskView = try await admin.call("GET", APIPath.task(task))
                    if view.state == .failed { throw BenchError("\(task) failed: \(view.reason ?? "?")") }
                    return view.state == .succeeded
                }
                let log = String(decoding: try await admin.raw("GET", APIPath.taskLogs(task)), as: UTF8.self)
                guard let started = Double(log.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                    throw BenchError("\(task) printed '\(log.prefix(80))', not a time")
                }
                samples.append(started - submitted)
                // Idle again: the agent's next claim long-poll is back at the master.
                try await Task.sleep(for: .milliseconds(30))
            }
            return samples
        }
        return latencyFigures("submit-to-start", samples,
                              note: "submit call → child's own clock (date +%s.%N), idle farm, one real agent")
    }

    /// A `ping` command posted (admin) until the real agent logs it applied (`command SEQ: ping`).
    static func talkback(_ context: BenchContext) async throws -> [Figure] {
        let samples = try await withFarm(context, "talkback") { farm in
            try await farm.startMaster()
            let agent = try await farm.startAgent("agent", slots: 2)
            let admin = farm.admin
            let log = try LogTail(path: farm.logPath("agent"))
            var samples: [Double] = []
            for _ in 0..<context.sizes.talkbackSamples {
                let start = ContinuousClock.now
                let accepted: CommandAccepted = try await admin.call("POST", APIPath.commands(agent),
                                                                     json: CommandRequest(kind: .ping))
                let needle = "command \(accepted.seq): ping"
                try await until(needle, timeout: 30, every: 0.001) { log.poll(contains: needle) }
                samples.append((ContinuousClock.now - start).seconds)
                try await Task.sleep(for: .milliseconds(30))
            }
            return samples
        }
        return latencyFigures("talkback ping", samples,
                              note: "POST command → the agent logs it applied (log file polled every 1 ms)")
    }
}

/// Follows a growing log file: reads what was appended since the last poll.
final class LogTail {
    private let handle: FileHandle
    private var text = ""

    init(path: String) throws {
        handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
    }

    /// Reads new bytes; true once `needle` appeared (everything up to it is consumed).
    func poll(contains needle: String) -> Bool {
        if let data = try? handle.readToEnd(), !data.isEmpty { text += String(decoding: data, as: UTF8.self) }
        guard let range = text.range(of: needle) else { return false }
        text = String(text[range.upperBound...])
        return true
    }
}
