import Foundation

/// OpenJD's `openjd_redacted_env: NAME=VALUE` stdout line (the REDACTED_ENV_VARS extension): an
/// environment's `onEnter` sets NAME as `openjd_env:` would, and VALUE never reaches a log. As the
/// reference runtime (openjd-sessions) does, the line stays in the log with VALUE replaced by
/// `********`, and so does every later occurrence of VALUE (and of each line of a value that has
/// several) in the output of the session's processes.
///
/// `Redactor` rewrites output chunk by chunk. It works on whole lines (`\n` or `\r` ends one): while
/// it knows no value, only an unfinished line that may be the start of an `openjd_redacted_env:` line
/// is held back; once it knows one, every unfinished line is held until its end (or until it passes
/// 64 KiB, or `flush`), so that a value cut between two chunks is still found. Bytes are compared as
/// bytes: output that holds no value passes unchanged.
public struct Redactor: Sendable {
    public static let marker = "openjd_redacted_env: "
    public static let mask = "********"
    private static let markerBytes = Array(marker.utf8)
    private static let maskBytes = Array(mask.utf8)
    private static let markerStart = Data("openjd_".utf8)
    /// A line held back longer than this is let through as it is (redacted of the values it holds whole).
    static let holdLimit = 64 * 1024

    /// The values to redact, as bytes, longest first.
    public private(set) var secrets: [[UInt8]] = []
    private var held: [UInt8] = []

    public init(secrets: [[UInt8]] = []) {
        for secret in secrets { add(secret) }
    }

    /// Output to log: `chunk` after what was held, with the values replaced; what it ends with may be
    /// held back for the next call.
    public mutating func feed(_ chunk: Data) -> Data {
        if secrets.isEmpty && held.isEmpty && chunk.range(of: Self.markerStart) == nil {
            // The common case: no value known, no marker in sight ("openjd_" is its start), unless the
            // chunk ends in the middle of one.
            let end = chunk.lastIndex { $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }.map { $0 + 1 } ?? chunk.startIndex
            if !mayHold(Array(chunk[end...])) { return chunk }
        }
        var buffer = held
        buffer.append(contentsOf: chunk)
        held = []
        var output: [UInt8] = []
        var start = 0
        for (i, byte) in buffer.enumerated() where byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
            output += line(Array(buffer[start..<i]))
            output.append(byte)
            start = i + 1
        }
        let rest = Array(buffer[start...])
        if mayHold(rest) {
            held = rest
        } else {
            output += line(rest)
        }
        return Data(output)
    }

    /// What is still held back, redacted: at the end of the output.
    public mutating func flush() -> Data {
        defer { held = [] }
        return Data(line(held))
    }

    /// Whether an unfinished line waits for its end: it may become an `openjd_redacted_env:` line, or
    /// it may hold part of a value.
    private func mayHold(_ rest: [UInt8]) -> Bool {
        guard !rest.isEmpty, rest.count <= Self.holdLimit else { return false }
        if !secrets.isEmpty { return true }
        let marker = Self.markerBytes
        return rest.count < marker.count ? marker.starts(with: rest) : rest.starts(with: marker)
    }

    /// One line, its values redacted; an `openjd_redacted_env:` line first adds its value.
    private mutating func line(_ bytes: [UInt8]) -> [UInt8] {
        if bytes.starts(with: Self.markerBytes) {
            var message = bytes.dropFirst(Self.markerBytes.count).drop { $0 == UInt8(ascii: " ") }
            if let equals = message.firstIndex(of: UInt8(ascii: "=")) {
                message = message[(equals + 1)...]
            }
            add(Array(message))
        }
        return redacted(bytes)
    }

    /// Adds a value (and each line of it, when it has several).
    public mutating func add(_ value: [UInt8]) {
        for part in [value] + value.split(separator: UInt8(ascii: "\n")).map(Array.init) where !part.isEmpty {
            guard !secrets.contains(part) else { continue }
            secrets.append(part)
        }
        secrets.sort { $0.count > $1.count }
    }

    /// `bytes` with every occurrence of a value replaced by the mask (overlapping ones merged).
    func redacted(_ bytes: [UInt8]) -> [UInt8] {
        guard !secrets.isEmpty, !bytes.isEmpty else { return bytes }
        var covered: [Range<Int>] = []
        for secret in secrets where secret.count <= bytes.count {
            var from = 0
            while from + secret.count <= bytes.count {
                guard let found = Self.firstIndex(of: secret, in: bytes, from: from) else { break }
                covered.append(found..<(found + secret.count))
                from = found + 1
            }
        }
        guard !covered.isEmpty else { return bytes }
        covered.sort { $0.lowerBound < $1.lowerBound }
        var merged: [Range<Int>] = []
        for range in covered {
            if let last = merged.last, range.lowerBound <= last.upperBound {
                merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
            } else {
                merged.append(range)
            }
        }
        var output: [UInt8] = []
        var at = 0
        for range in merged {
            output += bytes[at..<range.lowerBound]
            output += Self.maskBytes
            at = range.upperBound
        }
        output += bytes[at...]
        return output
    }

    static func firstIndex(of needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        guard let first = needle.first, needle.count <= haystack.count - from else { return nil }
        var i = from
        let last = haystack.count - needle.count
        while i <= last {
            if haystack[i] == first && haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }
}
