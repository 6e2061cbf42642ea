import Foundation
import PaddockProtocol

/// The host attributes an agent detects itself (OpenJD's `attr.worker.os.family` and
/// `attr.worker.cpu.arch`), as the tags `os.family:VALUE` and `cpu.arch:VALUE` (see `HostAttributes`).
public enum HostAttributeDetection {
    public static func osFamily() -> String {
        #if os(macOS)
        return "macos"
        #elseif os(Windows)
        return "windows"
        #else
        return "linux"
        #endif
    }

    /// OpenJD's name for the machine's architecture, or nil for one it has no name for.
    public static func cpuArch(machine: String = HostAttributeDetection.machine()) -> String? {
        switch machine.lowercased() {
        case "x86_64", "amd64": "x86_64"
        case "aarch64", "arm64": "arm64"
        default: nil
        }
    }

    public static func machine() -> String {
        var info = utsname()
        guard uname(&info) == 0 else { return "" }
        return withUnsafeBytes(of: &info.machine) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// The agent's attribute tags: what it detected, then what it was told (`--attr NAME=VALUE`, which
    /// replaces a detected standard attribute of the same name).
    public static func tags(declared: [String]) throws(HostAttributes.Problem) -> [String] {
        var tags: [String] = []
        for text in declared { tags.append(try HostAttributes.declared(text)) }
        let named = Set(tags.compactMap { $0.split(separator: ":").first.map(String.init) })
        if !named.contains(HostAttributes.osFamily) { tags.append("\(HostAttributes.osFamily):\(osFamily())") }
        if !named.contains(HostAttributes.cpuArch), let arch = cpuArch() { tags.append("\(HostAttributes.cpuArch):\(arch)") }
        return tags
    }
}
