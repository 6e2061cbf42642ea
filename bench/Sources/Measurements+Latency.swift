import Foundation
import PaddockProtocol

/// Latencies of single events on an otherwise idle farm.
extension Measurements {
    /// From the submit call to two moments of the task's start, on an idle farm:
    /// - the agent turning to its launch (its debug log's `launch began at` stamp), the moment the
    ///   peers' harness stamps as a task's start: their task body's first line, before it spawns its
    ///   child;
    /// - the child process running: each task is `date +%s.%N`, whose own output (read back from the
    ///   task's log) says when it ran, so the spawn and `date`'s own start are in it too.
    static func submitToStart(_ context: BenchContext) async throws -> [Figure] {
        let (launches, children) = try await withFarm(context, "latency") { farm in
            try await farm.startMaster()
            try await farm.startAgent("agent", slots: 2, logLevel: "debug")
            let admin = farm.admin
            let agentLog = try LogTail(path: farm.logPath("agent"))
            let text = #"{"name":"stamp","tasks":[{"name":"stamp","command":["date","+%s.%N"]}]}"#
            var launches: [Double] = []
            var children: [Double] = []
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
                children.append(started - submitted)
                // An agent from before session 19 logs no stamp: then only the child's clock is reported.
                var line: String?
                try await until("the agent's line of \(task)'s start", timeout: 30, every: 0.01) {
                    line = agentLog.poll(lineAfter: "task \(task) started (pid ")
                    return line != nil
                }
                if let began = line.flatMap({ LogTail.number(after: "launch began at ", in: $0) }) {
                    launches.append(began - submitted)
                }
                // Idle again: the agent's next claim long-poll is back at the master.
                try await Task.sleep(for: .milliseconds(30))
            }
            return (launches, children)
        }
        let launchFigures = launches.isEmpty ? [] : latencyFigures("submit-to-launch", launches,
            note: "submit call → the agent turns to the launch (its debug log's stamp; the peers stamp their task body's start, before its child), idle farm, one real agent")
        return launchFigures
            + latencyFigures("submit-to-start", children,
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
        readAppended()
        guard let range = text.range(of: needle) else { return false }
        text = String(text[range.upperBound...])
        return true
    }

    /// Reads new bytes; once the line holding `needle` is complete, the rest of that line after it
    /// (everything up to that line's end is consumed). Nil while it has not arrived.
    func poll(lineAfter needle: String) -> String? {
        readAppended()
        guard let range = text.range(of: needle),
              let end = text[range.upperBound...].firstIndex(of: "\n") else { return nil }
        let line = String(text[range.upperBound..<end])
        text = String(text[text.index(after: end)...])
        return line
    }

    private func readAppended() {
        if let data = try? handle.readToEnd(), !data.isEmpty { text += String(decoding: data, as: UTF8.self) }
    }

    /// The number written after `marker` in `line`, if it is there.
    static func number(after marker: String, in line: String) -> Double? {
        guard let at = line.range(of: marker) else { return nil }
        return Double(line[at.upperBound...].prefix { $0.isNumber || $0 == "." })
    }
}
