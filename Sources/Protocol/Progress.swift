import Foundation

/// A task tells its progress on stdout with a line `PROGRESS 0.42` or `PROGRESS 42%`.
public enum ProgressLine {
    /// The fraction (0…1) a line announces, or nil for any other line.
    public static func parse<S: StringProtocol>(_ line: S) -> Double? {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        guard trimmed.hasPrefix("PROGRESS "), trimmed.count <= 64 else { return nil }
        var value = trimmed.dropFirst("PROGRESS ".count).trimmingCharacters(in: .whitespaces)
        let percent = value.hasSuffix("%")
        if percent { value.removeLast() }
        guard let number = Double(value), number.isFinite else { return nil }
        let fraction = percent ? number / 100 : number
        return min(1, max(0, fraction))
    }

    /// Splits output into lines across chunk boundaries and reports the last progress seen.
    public struct Scanner: Sendable {
        private var partial: [UInt8] = []
        public init() {}

        public mutating func feed(_ bytes: some Sequence<UInt8>) -> Double? {
            var found: Double?
            for byte in bytes {
                if byte == UInt8(ascii: "\n") {
                    if let value = ProgressLine.parse(String(decoding: partial, as: UTF8.self)) { found = value }
                    partial.removeAll(keepingCapacity: true)
                } else if partial.count < 128 {
                    partial.append(byte)  // a progress line is short: longer lines are not kept whole
                }
            }
            return found
        }
    }
}
