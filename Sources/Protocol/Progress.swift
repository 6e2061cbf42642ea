import Foundation

/// A task tells its progress on stdout with a line `PROGRESS 0.42` or `PROGRESS 42%`, or with lines
/// its job's `progress_regex` matches (Blender's `Fra:(\d+)` against the task's frame range).
public enum ProgressLine {
    /// The fraction (0…1) a line announces, or nil for any other line.
    public static func parse<S: StringProtocol>(_ line: S) -> Double? {
        let trimmed = line.trimmingSpaces
        guard trimmed.hasPrefix("PROGRESS "), trimmed.count <= 64 else { return nil }
        var value = trimmed.dropFirst("PROGRESS ".count).trimmingSpaces
        let percent = value.hasSuffix("%")
        if percent { value = value.dropLast() }
        guard let number = Double(value), number.isFinite else { return nil }
        let fraction = percent ? number / 100 : number
        return min(1, max(0, fraction))
    }

    /// A job's progress expression: its first capture group is a frame number when the task has a
    /// frame range (progress = frames done / frames), otherwise a percentage.
    public struct Pattern: Sendable {
        let regex: NSRegularExpression

        public init?(_ pattern: String) {
            guard !pattern.isEmpty, pattern.count <= 256,
                  let regex = try? NSRegularExpression(pattern: pattern), regex.numberOfCaptureGroups >= 1 else { return nil }
            self.regex = regex
        }

        public func progress(of line: String, frames: ClosedRange<Int>?) -> Double? {
            let range = NSRange(line.startIndex..., in: line)
            guard let match = regex.firstMatch(in: line, range: range) else { return nil }
            return fraction(of: match, in: line, frames: frames)
        }

        /// The progress a match's first group says.
        func fraction(of match: NSTextCheckingResult, in line: String, frames: ClosedRange<Int>?) -> Double? {
            guard let group = Range(match.range(at: 1), in: line), let number = Double(line[group]), number.isFinite
            else { return nil }
            if let frames {
                let done = number - Double(frames.lowerBound) + 1
                return min(1, max(0, done / Double(frames.count)))
            }
            return min(1, max(0, number / 100))
        }
    }

    /// Splits output into lines across chunk boundaries and reports the last progress seen.
    public struct Scanner {
        private var partial: [UInt8] = []
        private let pattern: Pattern?
        private let frames: ClosedRange<Int>?
        /// Lines are read whole up to this length (a progress line is short; longer ones are cut).
        static let lineLimit = 4096

        public init(pattern: Pattern? = nil, frames: ClosedRange<Int>? = nil) {
            self.pattern = pattern
            self.frames = frames
        }

        public mutating func feed(_ bytes: some Sequence<UInt8>) -> Double? {
            var found: Double?
            for line in lines(bytes) {
                if let value = ProgressLine.parse(line) ?? pattern?.progress(of: line, frames: frames) { found = value }
            }
            return found
        }

        /// The lines `bytes` completes (the rest waits for the next chunk), each cut at `lineLimit`.
        public mutating func lines(_ bytes: some Sequence<UInt8>) -> [String] {
            var lines: [String] = []
            for byte in bytes {
                if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                    lines.append(String(decoding: partial, as: UTF8.self))
                    partial.removeAll(keepingCapacity: true)
                } else if partial.count < Self.lineLimit {
                    partial.append(byte)
                }
            }
            return lines
        }
    }
}
