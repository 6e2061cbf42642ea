import Foundation
import PaddockClient
import PaddockProtocol

/// Ships one run's output to the master in batches, with offsets: a resend after
/// a broken connection starts from what the master acknowledged, so nothing is
/// lost or doubled (the master skips bytes it already holds).
actor LogUploader {
    let client: MasterClient
    let task: TaskID
    let epoch: LeaseEpoch
    /// Bytes not yet acknowledged, starting at stream offset `base`.
    private var pending = Data()
    private var base: Int64 = 0
    private var dropped: Int64 = 0
    private(set) var closed = false
    /// The master refused the epoch: this run's output no longer counts.
    private(set) var fenced = false
    /// The upload loop waiting for its next round: woken early when the output ends.
    private var napper: CheckedContinuation<Void, Never>?

    static let batchBytes = 1 << 20
    /// The agent keeps at most this much unacknowledged output while the master is away.
    static let bufferCap = 16 << 20

    init(client: MasterClient, task: TaskID, epoch: LeaseEpoch) {
        self.client = client
        self.task = task
        self.epoch = epoch
    }

    func append(_ data: Data) {
        guard !fenced else { return }
        if pending.count + data.count <= Self.bufferCap {
            pending.append(data)
        } else {
            dropped += Int64(data.count)
        }
    }

    func close() {
        if dropped > 0 {
            pending.append(Data("\n[paddock: \(dropped) bytes dropped while the master was unreachable]\n".utf8))
            dropped = 0
        }
        closed = true
        napper?.resume()
        napper = nil
    }

    /// Waits `period` before the next upload round (output is batched by time), but not a moment
    /// longer once the output has ended: the finish report waits for the last upload.
    func nap(_ period: Duration) async {
        guard !closed else { return }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: period)
            await self?.wake()
        }
        await withCheckedContinuation { napper = $0 }
        timer.cancel()
    }

    private func wake() {
        napper?.resume()
        napper = nil
    }

    var done: Bool { fenced || (closed && pending.isEmpty) }

    /// Uploads what is pending; false when the master could not be reached.
    @discardableResult
    func flush() async -> Bool {
        while !pending.isEmpty && !fenced {
            let batch = pending.prefix(Self.batchBytes)
            let ack: LogAck
            do {
                let data = try await client.raw(
                    "POST", APIPath.taskLogs(task), query: ["epoch": String(epoch.rawValue), "offset": String(base)],
                    body: Data(batch))
                ack = try WireJSON.decoder().decode(LogAck.self, from: data)
            } catch let error as ClientError {
                if !error.isRetryable { fenced = true }
                return false
            } catch {
                fenced = true
                return false
            }
            let accepted = Int(max(0, min(Int64(pending.count), ack.size - base)))
            pending.removeFirst(accepted)
            base += Int64(accepted)
            if accepted == 0 { return true }
        }
        return true
    }
}

/// Sends a task's latest progress, at most once per upload round (not once per line).
actor ProgressReporter {
    let client: MasterClient
    let task: TaskID
    let epoch: LeaseEpoch
    private var latest: Double?
    private var sent: Double?

    init(client: MasterClient, task: TaskID, epoch: LeaseEpoch) {
        self.client = client
        self.task = task
        self.epoch = epoch
    }

    func update(_ value: Double) { latest = value }

    func send() async {
        guard let value = latest, value != sent else { return }
        do {
            _ = try await client.raw("POST", APIPath.taskProgress(task),
                                     body: try WireJSON.encoder().encode(TaskReport(epoch: epoch, progress: value)),
                                     contentType: "application/json")
            sent = value
        } catch let error as ClientError where !error.isRetryable {
            sent = value  // refused (the run is over or fenced): do not insist
        } catch {}
    }
}
