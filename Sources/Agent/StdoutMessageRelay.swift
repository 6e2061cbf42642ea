import Foundation
import PaddockProtocol

/// Reads a run's output for OpenJD's `openjd_status:` and `openjd_fail:` lines: a status goes to the
/// master with the run's progress; the last failure message is kept, and fails the run when it ends.
struct StdoutMessageRelay {
    let outbox: Outbox
    let task: TaskID
    let epoch: LeaseEpoch
    private var scanner = StdoutMessage.Scanner()
    /// The text of the latest `openjd_fail:` line, if the run printed one.
    private(set) var failure: String?

    init(outbox: Outbox, task: TaskID, epoch: LeaseEpoch) {
        self.outbox = outbox
        self.task = task
        self.epoch = epoch
    }

    mutating func feed(_ chunk: Data) async {
        for message in scanner.feed(chunk) {
            switch message {
            case .status(let text): await outbox.status(task, epoch: epoch, text)
            case .fail(let text): failure = text
            }
        }
    }
}
