import Foundation

/// Every run's figures gathered by name: median, min and max across runs.
struct Summary: Codable, Sendable {
    var name: String
    var unit: String
    var median: Double?
    var min: Double?
    var max: Double?
    var samples: [Double?]
    var note: String?

    static func gather(_ runs: [[Figure]]) -> [Summary] {
        var order: [String] = []
        var byName: [String: [Figure]] = [:]
        for figure in runs.joined() {
            if byName[figure.name] == nil { order.append(figure.name) }
            byName[figure.name, default: []].append(figure)
        }
        return order.compactMap { name in
            guard let figures = byName[name], let first = figures.first else { return nil }
            let values = figures.map(\.value).filter(\.isFinite)
            return Summary(name: name, unit: first.unit, median: Percentile.median(values), min: values.min(),
                           max: values.max(), samples: figures.map { $0.value.isFinite ? $0.value : nil },
                           note: figures.compactMap(\.note).first)
        }
    }
}

/// What a whole run of the harness writes: the JSON file and the table on stdout.
struct Report: Codable, Sendable {
    var generatedAt: Date
    var command: String
    var smoke: Bool
    var runs: Int
    var durationSeconds: Double
    var machine: MachineInfo
    var figures: [Summary]
    var failures: [String]

    enum CodingKeys: String, CodingKey {
        case command, smoke, runs, machine, figures, failures
        case generatedAt = "generated_at"
        case durationSeconds = "duration_seconds"
    }

    func write(json path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        try encoder.encode(self).write(to: URL(fileURLWithPath: path))
    }

    /// A plain-text table (also valid Markdown).
    var table: String {
        let header = ["figure", "median", "min", "max", "unit"]
        let rows = figures.map { [$0.name, Self.format($0.median), Self.format($0.min), Self.format($0.max), $0.unit] }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            "| " + cells.enumerated().map { column, cell in
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                return column == 0 || column == 4 ? cell + pad : pad + cell
            }.joined(separator: " | ") + " |"
        }
        let rule = "|" + widths.enumerated().map { column, width in
            column == 0 || column == 4 ? String(repeating: "-", count: width + 2) : String(repeating: "-", count: width + 1) + ":"
        }.joined(separator: "|") + "|"
        var out = [line(header), rule] + rows.map(line)
        out.append("")
        out.append("\(runs) run(s), \(machine.cores) cores, \(String(format: "%.0f", durationSeconds)) s\(smoke ? ", smoke sizes" : ""); load average \(machine.loadAverage)")
        for failure in failures { out.append("FAILED: \(failure)") }
        return out.joined(separator: "\n")
    }

    /// Three significant digits, or "—" for nothing.
    static func format(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "—" }
        let magnitude = abs(value)
        if magnitude >= 100 { return String(format: "%.0f", value) }
        if magnitude >= 10 { return String(format: "%.1f", value) }
        if magnitude >= 1 { return String(format: "%.2f", value) }
        return String(format: "%.3f", value)
    }
}
