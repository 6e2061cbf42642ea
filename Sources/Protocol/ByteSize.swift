import Foundation

/// Sizes as users write them: `8GiB`, `512MiB`, `1.5G`, `100MB`, `4096`.
/// Binary (KiB, MiB...) and decimal (KB, MB...) units; a bare `K/M/G/T` is binary,
/// as `free -h` and Slurm's `--mem` read it.
public enum ByteSize {
    /// The largest size accepted anywhere (1 PiB): bounds every resource value.
    public static let maximum: Int64 = 1 << 50

    public static func parse(_ text: String) -> Int64? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.count <= 32 else { return nil }
        let numberPart = trimmed.prefix { $0.isNumber || $0 == "." }
        let unit = trimmed.dropFirst(numberPart.count).trimmingCharacters(in: .whitespaces).lowercased()
        guard !numberPart.isEmpty, let value = Double(numberPart), value.isFinite, value >= 0 else { return nil }
        let multiplier: Double
        switch unit {
        case "", "b": multiplier = 1
        case "k", "kib", "ki": multiplier = 1024
        case "m", "mib", "mi": multiplier = 1024 * 1024
        case "g", "gib", "gi": multiplier = 1024 * 1024 * 1024
        case "t", "tib", "ti": multiplier = 1024 * 1024 * 1024 * 1024
        case "p", "pib", "pi": multiplier = 1024 * 1024 * 1024 * 1024 * 1024
        case "kb": multiplier = 1e3
        case "mb": multiplier = 1e6
        case "gb": multiplier = 1e9
        case "tb": multiplier = 1e12
        case "pb": multiplier = 1e15
        default: return nil
        }
        let bytes = (value * multiplier).rounded()
        guard bytes <= Double(maximum) else { return nil }
        return Int64(bytes)
    }

    /// `1.5GiB`, `512MiB`, `100B`: the shortest binary rendering.
    public static func format(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes)
        var index = 0
        while value >= 1024, index < units.count - 1 { value /= 1024; index += 1 }
        if index == 0 { return "\(bytes)B" }
        var rounded = (value * 10).rounded() / 10
        // 1048575 bytes is 1023.999KiB: rounded, that is 1MiB, not "1024KiB".
        if rounded >= 1024, index < units.count - 1 {
            rounded /= 1024
            index += 1
        }
        return rounded == rounded.rounded() ? "\(Int64(rounded))\(units[index])" : "\(rounded)\(units[index])"
    }
}

/// Durations as users write them: `1s`, `500ms`, `5m`, `2h`, `1.5`, or a number of seconds.
public enum DurationText {
    public static let maximumSeconds: Double = 30 * 24 * 3600

    public static func parse(_ text: String) -> Double? { parse(text, maximum: maximumSeconds) }

    /// For settings that may run longer than a task (a log retention of a year).
    public static func parse(_ text: String, maximum: Double) -> Double? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        guard !trimmed.isEmpty, trimmed.count <= 32 else { return nil }
        let numberPart = trimmed.prefix { $0.isNumber || $0 == "." }
        let unit = trimmed.dropFirst(numberPart.count)
        guard let value = Double(numberPart), value.isFinite, value >= 0 else { return nil }
        let seconds: Double
        switch unit {
        case "", "s": seconds = value
        case "ms": seconds = value / 1000
        case "m", "min": seconds = value * 60
        case "h": seconds = value * 3600
        case "d": seconds = value * 86400
        default: return nil
        }
        return seconds <= maximum ? seconds : nil
    }
}
