import CSpawn
#if canImport(Glibc)
import Glibc
#endif

/// Drops from this process's page tables the pages of its clean, read-only file mappings: the code
/// and constants of its executable and libraries.
///
/// Why: the kernel maps code 64 kB around every page a fault touches (fault-around), so start-up
/// and each run leave megabytes of code resident that an idle agent's loops never run again. The
/// idle agent's resident set was about 39 MiB, of which under 4 MiB was its own memory
/// (docs/BENCHMARKS.md, sessions 20 and 25). After a release, the pages stay in the page cache,
/// shared with every other process that maps them; the next touch maps a page back with a minor
/// fault, no disk read.
///
/// Safe because only mappings that cannot hold a written page are released: private, not writable,
/// backed by a file, and with no private copy of any page, resident or swapped out (`Anonymous:`
/// and `Swap:` both 0 kB). A relocated data segment made read-only after relocation (RELRO)
/// holds private copies, so it is left alone; releasing it would lose the relocations. A read-only
/// mapping cannot gain a private copy after the check, since nothing writes to it. What is released
/// is what the kernel may evict from such a mapping at any time under memory pressure, and maps
/// back the same way.
public enum ResidentPages {
    /// One mapping of /proc/self/smaps that may be released.
    public struct Mapping: Equatable, Sendable {
        public var start: UInt
        public var end: UInt
        public var bytes: UInt { end - start }

        public init(start: UInt, end: UInt) {
            self.start = start
            self.end = end
        }
    }

    /// The mappings of an smaps text that `release` may drop: private, readable, not writable, file
    /// backed (an inode), no privately copied page (resident, `Anonymous:`, or swapped out, `Swap:`),
    /// not locked.
    public static func releasable(smaps: String) -> [Mapping] {
        var found: [Mapping] = []
        var candidate: Mapping?
        var anonymous = false
        var locked = false
        func close() {
            if let candidate, !anonymous, !locked { found.append(candidate) }
            candidate = nil
        }
        for line in smaps.split(separator: "\n", omittingEmptySubsequences: true) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if let range = addressRange(first) {
                close()
                anonymous = false
                locked = false
                // address perms offset device inode [path]
                guard fields.count >= 6, fields[1].count == 4, fields[4] != "0" else { continue }
                let perms = Array(fields[1].utf8)
                guard perms[0] == UInt8(ascii: "r"), perms[1] == UInt8(ascii: "-"), perms[3] == UInt8(ascii: "p") else { continue }
                candidate = range
            } else if first == "Anonymous:" || first == "Swap:" {
                anonymous = anonymous || (fields.count >= 2 && fields[1] != "0")
            } else if first == "Locked:" {
                locked = locked || (fields.count >= 2 && fields[1] != "0")
            } else if first == "VmFlags:" {
                locked = locked || fields.contains("lo")
            }
        }
        close()
        return found
    }

    /// `start-end` in hexadecimal, as a mapping's header line begins; nil for a field line.
    private static func addressRange(_ token: Substring) -> Mapping? {
        let parts = token.split(separator: "-")
        guard parts.count == 2, let start = UInt(parts[0], radix: 16), let end = UInt(parts[1], radix: 16), start < end
        else { return nil }
        return Mapping(start: start, end: end)
    }

    /// Releases the releasable mappings of this process and returns them. The heap's free pages go
    /// back too (`malloc_trim`): the threads' arenas keep what start-up and the runs freed.
    @discardableResult
    public static func release() -> [Mapping] {
        guard let data = ProcFile.read("/proc/self/smaps") else { return [] }
        let mappings = releasable(smaps: String(decoding: data, as: UTF8.self))
        for mapping in mappings {
            // An error (a mapping gone since the read) leaves that mapping as it was.
            _ = madvise(UnsafeMutableRawPointer(bitPattern: mapping.start), Int(mapping.bytes), MADV_DONTNEED)
        }
        _ = paddock_malloc_trim()
        return mappings
    }

    /// This process's resident set, in bytes (`/proc/self/statm`).
    public static func residentBytes() -> Int? {
        guard let data = ProcFile.read("/proc/self/statm") else { return nil }
        let fields = String(decoding: data, as: UTF8.self).split(separator: " ")
        guard fields.count >= 2, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
