import Foundation
import PaddockProtocol

/// What the agent has still to tell the master: starts of prefetched leases, output, progress and
/// ends of runs. The exchange loop sends it in batches; a report leaves the outbox only when the
/// master acknowledged it, so a lost answer means a resend (starts and finishes are idempotent by
/// epoch, logs by offset), never a loss.
actor Outbox {
    /// One run's output not yet acknowledged, from stream offset `base` on.
    struct RunLog {
        var epoch: LeaseEpoch
        var base: Int64 = 0
        var pending = Data()
        var dropped: Int64 = 0
        /// The master refused this run's reports: its output no longer counts.
        var fenced = false
        /// The master's copy of this run's log reached its cap: the rest of the output is not sent.
        var capped = false
    }

    struct Finish {
        var report: FinishReport
        /// The agent stopped the run because the master decided (cancel, lease moved on): the master
        /// will refuse this report, rightly.
        var expectRefusal: Bool
    }

    /// What the exchange loop should know of a refused report.
    struct Refusal: Sendable {
        var task: TaskID
        var epoch: LeaseEpoch
        var kind: ExchangeRefusal.Kind
        /// The run's lease moved to another agent (`stale_epoch`): nothing of this run counts any more.
        var stolen: Bool
        var message: String
        var expected: Bool
    }

    /// The agent keeps at most this much unacknowledged output per run while the master is away.
    static let bufferCap = 16 << 20
    /// Output alone waits this long to be sent with more (a chatty task must not cost an exchange
    /// per line); a start or a finish goes at once, unless the agent can let it wait for company.
    static let logTick: Duration = .milliseconds(200)
    /// How long a start or a finish may wait for others to go in the same exchange while every slot
    /// has work without it (`Workload.canCoalesce`): short tasks then cost the master an exchange
    /// per few runs, not one each, and no slot idles meanwhile.
    static let coalesceWindow: Duration = .milliseconds(10)
    /// Output past this many bytes goes at once.
    static let eagerLogBytes = 256 << 10

    let nudge: Nudge
    private var logs: [TaskID: RunLog] = [:]
    private var starts: [TaskID: LeaseEpoch] = [:]
    private var progress: [TaskID: ExchangeProgress] = [:]
    /// Each running task's latest progress, sent again with a status that changes alone.
    private var latestProgress: [TaskID: Double] = [:]
    private var finishes: [TaskID: Finish] = [:]
    /// When output or progress first waited unsent (the tick counts from there).
    private var waitingSince: ContinuousClock.Instant?
    /// When a start or a finish first waited unsent (the coalescing window counts from there).
    private var urgentSince: ContinuousClock.Instant?
    /// Runs whose start the master refused: stolen (another agent runs the task: nothing of this
    /// run counts) or refused for want of room (the lease is still ours: the run is given back).
    private var refusedStarts: [TaskID: (epoch: LeaseEpoch, stolen: Bool)] = [:]

    /// The log tick is measured on the nudge's clock.
    init(nudge: Nudge) { self.nudge = nudge }

    func open(_ task: TaskID, epoch: LeaseEpoch) {
        logs[task] = RunLog(epoch: epoch)
    }

    func started(_ task: TaskID, epoch: LeaseEpoch) {
        starts[task] = epoch
        if urgentSince == nil { urgentSince = nudge.clock.now }
        nudge.poke()
    }

    func append(_ task: TaskID, _ data: Data) {
        guard var log = logs[task], !log.fenced, !log.capped else { return }
        if log.pending.count + data.count <= Self.bufferCap {
            log.pending.append(data)
        } else {
            log.dropped += Int64(data.count)
        }
        logs[task] = log
        markWaiting(eager: log.pending.count >= Self.eagerLogBytes)
    }

    func progress(_ task: TaskID, epoch: LeaseEpoch, _ value: Double) {
        latestProgress[task] = value
        guard progress[task]?.progress != value else { return }
        var report = progress[task] ?? ExchangeProgress(task: task, epoch: epoch, progress: value)
        report.progress = value
        progress[task] = report
        markWaiting(eager: false)
    }

    /// The run printed a new status (`openjd_status:`): it goes with its latest progress.
    func status(_ task: TaskID, epoch: LeaseEpoch, _ text: String) {
        var report = progress[task] ?? ExchangeProgress(task: task, epoch: epoch, progress: latestProgress[task] ?? 0)
        guard report.status != text else { return }
        report.status = text
        progress[task] = report
        markWaiting(eager: false)
    }

    /// The run ended: its finish goes with (or after) the last of its output.
    /// A lease the agent never launched goes back to the queue: a `released` finish, no attempt used.
    func releaseUnlaunched(_ task: TaskID, epoch: LeaseEpoch, reason: StopReason) {
        open(task, epoch: epoch)
        finish(task, FinishReport(epoch: epoch, outcome: .released, exitCode: nil, reason: reason.rawValue), expectRefusal: false)
    }

    func finish(_ task: TaskID, _ report: FinishReport, expectRefusal: Bool) {
        latestProgress[task] = nil
        var report = report
        if let refused = refusedStarts.removeValue(forKey: task), refused.epoch == report.epoch {
            guard !refused.stolen else { return }
            report = Self.release(report)
        }
        if var log = logs[task], log.dropped > 0 {
            log.pending.append(Data("\n[paddock: \(log.dropped) bytes dropped while the master was unreachable]\n".utf8))
            log.dropped = 0
            logs[task] = log
        }
        finishes[task] = Finish(report: report, expectRefusal: expectRefusal)
        if urgentSince == nil { urgentSince = nudge.clock.now }
        nudge.poke()
    }

    /// The end of a run whose start the master refused for want of room: the lease goes back.
    static func release(_ report: FinishReport) -> FinishReport {
        FinishReport(epoch: report.epoch, outcome: .released, exitCode: nil, reason: StopReason.startRefused.rawValue,
                     usage: report.usage)
    }

    private func markWaiting(eager: Bool) {
        if waitingSince == nil { waitingSince = nudge.clock.now }
        if eager { waitingSince = nudge.clock.now - Self.logTick }
        nudge.poke()
    }

    /// Leases whose end the master has not acknowledged yet: heartbeats keep renewing them.
    var unacknowledged: [HeldLease] {
        finishes.map { HeldLease(task: $0.key, epoch: $0.value.report.epoch) }
    }

    var isEmpty: Bool {
        starts.isEmpty && finishes.isEmpty && progress.isEmpty && !logs.values.contains { !$0.pending.isEmpty && !$0.fenced }
    }

    /// Something must go now (a start or a finish), or output has waited its tick.
    /// Else, how long until it will have. With `coalescing` (the agent's slots all have work
    /// without the next exchange), a start or a finish waits up to `coalesceWindow` for company.
    /// Worked out at `now` (the clock's time when nil).
    func readiness(coalescing: Bool = false, at now: ContinuousClock.Instant? = nil) -> Duration? {
        let now = now ?? nudge.clock.now
        let logsDue = waitingSince.map { max(.zero, $0 + Self.logTick - now) }
        if !starts.isEmpty || !finishes.isEmpty {
            guard coalescing, let since = urgentSince else { return .zero }
            return min(max(.zero, since + Self.coalesceWindow - now), logsDue ?? .seconds(1))
        }
        return logsDue
    }

    /// The reports to send now. A run's finish goes only with the last of its output (logs are
    /// applied before finishes), so a run's log is whole when the master records its end.
    func batch() -> ExchangeRequest {
        var request = ExchangeRequest()
        var budget = ExchangeRequest.logBytes
        var whole: Set<TaskID> = []
        request.started = starts.map { HeldLease(task: $0.key, epoch: $0.value) }
        for (task, log) in logs.sorted(by: { $0.key < $1.key }) where !log.fenced {
            if log.pending.isEmpty {
                whole.insert(task)
                continue
            }
            let part = log.pending.prefix(budget)
            guard !part.isEmpty else { continue }
            request.logs.append(ExchangeLog(task: task, epoch: log.epoch, offset: log.base, data: Data(part)))
            budget -= part.count
            if part.count == log.pending.count { whole.insert(task) }
        }
        request.progress = Array(progress.values)
        for (task, finish) in finishes where logs[task].map({ $0.fenced || whole.contains(task) }) ?? true {
            request.finished.append(ExchangeFinish(task: task, report: finish.report))
        }
        return request
    }

    /// Removes what the master acknowledged in answer to `sent`; returns what it refused.
    func acknowledge(_ sent: ExchangeRequest, _ response: ExchangeResponse) -> [Refusal] {
        var refusals: [Refusal] = []
        var refused: Set<TaskID> = []
        for refusal in response.refused {
            refused.insert(refusal.task)
            let stolen = refusal.code == "stale_epoch"
            if refusal.kind == .start {
                // The master skipped the rest of this run's reports. Its end, if already here, is
                // dropped (stolen) or becomes a release (no room), sent next time; else it will be.
                if var finish = finishes[refusal.task], finish.report.epoch == refusal.epoch {
                    if stolen {
                        finishes[refusal.task] = nil
                    } else {
                        finish.report = Self.release(finish.report)
                        finishes[refusal.task] = finish
                    }
                } else {
                    refusedStarts[refusal.task] = (refusal.epoch, stolen)
                }
            }
            let expected = refusal.kind == .finish && refusal.status == 409
                && finishes[refusal.task].map { $0.expectRefusal && $0.report.epoch == refusal.epoch } == true
            refusals.append(Refusal(task: refusal.task, epoch: refusal.epoch, kind: refusal.kind, stolen: stolen,
                                    message: refusal.message, expected: expected))
            // A refused run's reports no longer count: drop all of them (a start refused for want of
            // room keeps its lease: the run's release is still to be told).
            if refusal.kind != .progress, logs[refusal.task]?.epoch == refusal.epoch {
                logs[refusal.task]?.fenced = true
                logs[refusal.task]?.pending = Data()
            }
        }
        for start in sent.started where starts[start.task] == start.epoch { starts[start.task] = nil }
        for ack in response.logs {
            guard var log = logs[ack.task], log.epoch == ack.epoch else { continue }
            let accepted = Int(max(0, min(Int64(log.pending.count), ack.size - log.base)))
            log.pending.removeFirst(accepted)
            log.base += Int64(accepted)
            if ack.capped == true {
                log.capped = true
                log.pending = Data()
            }
            logs[ack.task] = log
        }
        for report in sent.progress where progress[report.task] == report { progress[report.task] = nil }
        for finished in sent.finished where finishes[finished.task]?.report == finished.report {
            finishes[finished.task] = nil
            logs[finished.task] = nil
        }
        for task in refused where finishes[task] == nil && starts[task] == nil {
            if logs[task]?.fenced == true { logs[task] = nil }
        }
        if progress.isEmpty && !logs.values.contains(where: { !$0.pending.isEmpty && !$0.fenced }) {
            waitingSince = nil
        }
        // What arrived while this exchange was in flight waits its window from now on.
        urgentSince = starts.isEmpty && finishes.isEmpty ? nil : nudge.clock.now
        return refusals
    }

    /// The master refused the whole exchange for good (a 4xx that a resend cannot mend): what was
    /// sent is dropped, so that the agent does not send it forever.
    func discard(_ sent: ExchangeRequest) {
        for start in sent.started { starts[start.task] = nil }
        for finished in sent.finished { finishes[finished.task] = nil; logs[finished.task] = nil }
        for report in sent.progress { progress[report.task] = nil }
        for log in sent.logs { logs[log.task]?.fenced = true; logs[log.task]?.pending = Data() }
        if starts.isEmpty && finishes.isEmpty { urgentSince = nil }
    }
}
