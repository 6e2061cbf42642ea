import Foundation

/// Open Job Description's stdout messages a running task may print, besides its progress (which
/// goes through `ProgressLine`): a line `openjd_status: TEXT` tells what the task is doing (shown in
/// the task view), `openjd_fail: TEXT` says why it failed (the task fails with TEXT as its reason,
/// even when its process then exits 0). The line is matched whole, as the reference runtime does
/// (`^openjd_(status|fail): (.+)$`); it stays in the task's log.
public enum StdoutMessage: Equatable, Sendable {
    case status(String)
    case fail(String)

    /// Characters of TEXT kept (a longer text is cut); the master refuses a longer status.
    public static let textLimit = 1024

    public static func parse(_ line: String) -> StdoutMessage? {
        guard line.hasPrefix("openjd_") else { return nil }
        for (prefix, make) in [("openjd_status: ", StdoutMessage.status), ("openjd_fail: ", StdoutMessage.fail)]
        where line.hasPrefix(prefix) {
            let text = String(line.dropFirst(prefix.count).prefix(textLimit))
            return text.isEmpty ? nil : make(text)
        }
        return nil
    }

    /// Splits output into lines across chunk boundaries and reports the messages among them.
    public struct Scanner: Sendable {
        private var partial: [UInt8] = []
        /// Lines are read whole up to this length (longer ones are cut).
        static let lineLimit = 4096

        public init() {}

        public mutating func feed(_ bytes: some Sequence<UInt8>) -> [StdoutMessage] {
            var found: [StdoutMessage] = []
            for byte in bytes {
                if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                    if let message = StdoutMessage.parse(String(decoding: partial, as: UTF8.self)) { found.append(message) }
                    partial.removeAll(keepingCapacity: true)
                } else if partial.count < Self.lineLimit {
                    partial.append(byte)
                }
            }
            return found
        }
    }
}
