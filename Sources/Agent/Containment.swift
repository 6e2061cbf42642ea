import Foundation
import Logging
import PaddockProtocol
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How much memory a task may hold before the kernel's OOM killer ends it.
public enum TaskMemoryLimit: Sendable, Equatable, CustomStringConvertible {
    /// The task's `ram` requirement, plus a margin (`ram+25%`); a task that asks for no RAM has no limit.
    case requirement(marginPercent: Int)
    /// `ram` only steers scheduling.
    case none

    /// `ram`, `ram+25%` or `none`.
    public init?(_ text: String) {
        let text = text.trimmingCharacters(in: .whitespaces).lowercased()
        if text == "none" { self = .none; return }
        if text == "ram" { self = .requirement(marginPercent: 0); return }
        guard text.hasPrefix("ram+"), text.hasSuffix("%"),
              let margin = Int(text.dropFirst(4).dropLast()), (0...1000).contains(margin) else { return nil }
        self = .requirement(marginPercent: margin)
    }

    public var description: String {
        switch self {
        case .none: "none"
        case .requirement(0): "ram"
        case .requirement(let margin): "ram+\(margin)%"
        }
    }

    /// The limit in bytes for a task that asks for `ram`, or nil for none.
    func bytes(forRequirement ram: Int64) -> Int64? {
        guard case .requirement(let margin) = self, ram > 0 else { return nil }
        return ram + ram / 100 * Int64(margin)
    }
}

/// What the agent does to contain its tasks, from its configuration.
public struct ContainmentPolicy: Sendable, Equatable {
    public var memory: TaskMemoryLimit = .requirement(marginPercent: 0)
    /// `pids.max` of each task (threads count); 0 for no limit.
    public var pidsMax: Int = 16_384
    /// Off: tasks run in process groups only, as where cgroups are not writable.
    public var enabled = true
    /// Children kept waiting in cgroups of their own for the next runs (`WarmChild`), at most one per
    /// slot; nil (`auto`): up to 4, where joining a cgroup is slow on this host.
    public var warmChildren: Int? = nil
    /// How many `auto` keeps where joining is slow.
    public static let autoWarmChildren = 4

    public init() {}
}

/// The cgroups the agent puts its tasks in, found once when it starts.
///
/// Each task runs in its own cgroup: cgroup v2 where the agent's subtree is delegated to it (systemd's
/// `Delegate=yes`), with `memory.max`, `pids.max`, `cpu.weight` and `cgroup.kill`; on a hybrid host
/// (cgroup v2 mounted at /sys/fs/cgroup/unified beside v1 controllers) the v1 memory, pids and cpu
/// controllers carry the limits and the v2 tree the membership and the kill. Where nothing is
/// writable, tasks run as process groups only, and the agent says so once when it starts.
public struct Containment: Sendable {
    /// A hierarchy the agent made its own directory in (named by its pid: agents on one host never share).
    struct Hierarchy: Sendable {
        enum Kind: Sendable { case unified, memory, pids, cpu, cpuacct }
        var kinds: Set<Kind>
        /// cgroup v2 (`memory.max`, `cgroup.kill`...) or v1 (`memory.limit_in_bytes`...).
        var v2: Bool
        /// The agent's directory in this hierarchy, where task cgroups are made.
        var base: String
    }

    let hierarchies: [Hierarchy]
    let policy: ContainmentPolicy
    /// Emptied cgroups of runs that ended, kept for the next runs.
    let pool = CgroupPool()
    /// Children waiting in cgroups of their own for the next runs.
    let warm = WarmPool()
    /// What works and what does not, said once in the agent's log.
    public let summary: String

    public var isActive: Bool { !hierarchies.isEmpty }

    static let wanted: [Hierarchy.Kind: String] = [.memory: "memory", .pids: "pids", .cpu: "cpu"]

    /// Finds the cgroup hierarchies this process may create children in, and makes the agent's own
    /// directory in each (`paddock-<pid>`), after removing what agents no longer alive left behind.
    public static func detect(policy: ContainmentPolicy, logger: Logger) -> Containment {
        guard policy.enabled else {
            return Containment(hierarchies: [], policy: policy, summary: "task cgroups off (--task-cgroups off)")
        }
        let mounts = Self.mounts()
        let memberships = Self.memberships()
        let pid = getpid()
        var hierarchies: [Hierarchy] = []
        var notes: [String] = []
        var covered: Set<Hierarchy.Kind> = []

        if let mount = mounts.v2, let own = memberships.v2 {
            let ownDir = mount.point + Self.relative(own, to: mount.root)
            if let (base, controllers) = Self.prepareV2(ownDir: ownDir, isRoot: Self.relative(own, to: mount.root) == "",
                                                        pid: pid, logger: logger) {
                var kinds: Set<Hierarchy.Kind> = [.unified]
                for (kind, name) in wanted where controllers.contains(name) { kinds.insert(kind) }
                // v2's cpu.stat holds the usage whether or not the cpu controller is enabled (4.15+):
                // where it is there, a hybrid host's v1 cpuacct is one join per launch for nothing.
                if kinds.contains(.cpu) || access(base + "/cpu.stat", R_OK) == 0 { kinds.insert(.cpuacct) }
                hierarchies.append(Hierarchy(kinds: kinds, v2: true, base: base))
                covered = kinds
            } else {
                notes.append("cgroup v2 at \(ownDir) is not writable")
            }
        }
        // v1 controllers fill in what v2 does not carry here (a hybrid host).
        for (kind, name) in [(Hierarchy.Kind.memory, "memory"), (.pids, "pids"), (.cpu, "cpu"), (.cpuacct, "cpuacct")]
            where !covered.contains(kind) {
            guard let mount = mounts.v1[name], let own = memberships.v1[name] else { continue }
            let base = mount.point + Self.relative(own, to: mount.root) + "/paddock-\(pid)"
            if let existing = hierarchies.firstIndex(where: { !$0.v2 && $0.base == base }) {
                hierarchies[existing].kinds.insert(kind)  // co-mounted (cpu,cpuacct)
                covered.insert(kind)
                continue
            }
            Self.removeStale(in: (base as NSString).deletingLastPathComponent, logger: logger)
            guard mkdir(base, 0o755) == 0 || errno == EEXIST else {
                notes.append("\(name) cgroup \(base): \(String(cString: strerror(errno)))")
                continue
            }
            var kinds: Set<Hierarchy.Kind> = [kind]
            if name == "cpu", mount.controllers.contains("cpuacct") { kinds.insert(.cpuacct) }
            hierarchies.append(Hierarchy(kinds: kinds, v2: false, base: base))
            covered.formUnion(kinds)
        }
        var summary: String
        if hierarchies.isEmpty {
            summary = "task cgroups unavailable (" + (notes.isEmpty ? "no cgroup file system" : notes.joined(separator: "; "))
                + "): tasks run as process groups, with no memory limit, and a task that leaves its group can outlive a stop"
        } else {
            let has = { (kind: Hierarchy.Kind) in covered.contains(kind) }
            summary = "tasks run in cgroups under " + hierarchies.map(\.base).joined(separator: ", ")
                + ": memory limit " + (has(.memory) ? policy.memory.description : "unavailable")
                + ", pids " + (has(.pids) ? (policy.pidsMax > 0 ? "max \(policy.pidsMax)" : "unlimited") : "unavailable")
                + ", cpu weight " + (has(.cpu) ? "from cpus" : "unavailable")
                + ", kill " + (hierarchies.contains { $0.v2 } ? "cgroup.kill" : "by listing")
            if !notes.isEmpty { summary += " (" + notes.joined(separator: "; ") + ")" }
        }
        return Containment(hierarchies: hierarchies, policy: policy, summary: summary)
    }

    /// The cgroup of a run, with its limits set, or nil where containment is off (or its directories
    /// cannot be made: the task then runs as a process group, and the reason is logged).
    ///
    /// An emptied cgroup of an earlier run is used again where one is idle: making and removing a
    /// cgroup in each hierarchy costs more than a short task's whole run. Its counters are read as
    /// baselines (CPU time, OOM kills) and its peak reset, so what it reports is this run's own.
    func makeCgroup(task: TaskID, epoch: LeaseEpoch, resources: ResourceVector) throws(LaunchError) -> TaskCgroup? {
        guard isActive else { return nil }
        while var reused = pool.take() {
            do {
                try reused.prepare(limits: limits(for: resources))
                return reused
            } catch {
                reused.remove()  // a cgroup that cannot be set up again is not used again
            }
        }
        return try freshCgroup(limits: limits(for: resources))
    }

    /// The cgroup of a run and, where one waits in it, a warm child to run the task in (see
    /// `WarmChild`); otherwise as `makeCgroup`. The caller calls `replenish()` once it has launched.
    func prepareRun(task: TaskID, epoch: LeaseEpoch, resources: ResourceVector) throws(LaunchError) -> (cgroup: TaskCgroup?, warm: WarmChild?) {
        while let child = warm.take() {
            var cgroup = child.cgroup
            do {
                try cgroup.prepare(limits: limits(for: resources))
                return (cgroup, child)
            } catch {
                child.dismiss()
                cgroup.remove(waiting: .seconds(2))
            }
        }
        return (try makeCgroup(task: task, epoch: epoch, resources: resources), nil)
    }

    /// Keeps up to `count` warm children waiting, one per slot: a launch then finds its child already
    /// in its cgroup. With `onlyIfJoiningIsSlow` (`--warm-children auto`), only where joining a
    /// cgroup is slow on this host: the kernel makes the first join after a quiet spell wait out an
    /// RCU grace period (~14 ms) unless cgroup2 is mounted `favordynmods`, and where it does not, a
    /// warm child only costs CPU. Measured once, with the first child. Returns what was decided, for
    /// the agent's log.
    @discardableResult
    public func keepWarm(_ count: Int, onlyIfJoiningIsSlow: Bool = false) -> String? {
        guard isActive, count > 0 else { return nil }
        if onlyIfJoiningIsSlow {
            guard let probe = idleCgroup() else { return nil }
            let started = ContinuousClock.now
            guard let child = WarmChild(cgroup: probe) else {
                probe.remove()
                return nil
            }
            let joined = child.waitReady()
            let took = ContinuousClock.now - started
            let milliseconds = String(format: "%.2f", Double(took.components.attoseconds) / 1e15 + Double(took.components.seconds) * 1000)
            guard joined, took >= Self.slowJoin else {
                child.dismiss()
                child.cgroup.recycle(waiting: .seconds(2))
                return "joining a task cgroup took \(milliseconds) ms here: tasks are launched straight into theirs"
            }
            warm.setTarget(count)
            if !warm.adopt(child) {
                child.dismiss()
                child.cgroup.remove(waiting: .seconds(2))
            }
            replenish()
            return "joining a task cgroup took \(milliseconds) ms here (an RCU grace period: cgroup2 is not mounted favordynmods): \(count) child(ren) wait in their cgroups for the next tasks"
        }
        warm.setTarget(count)
        replenish()
        return nil
    }

    /// A join slower than this is the kernel's grace period, not the work of the join (~50 µs).
    static let slowJoin: Duration = .milliseconds(2)

    /// Starts warm children until as many wait as `keepWarm` asked for, each in an idle cgroup (or a
    /// new one), with no limits until a run takes it.
    func replenish() {
        for _ in 0..<warm.reserveStarts() {
            var child: WarmChild?
            if let cgroup = idleCgroup() {
                child = WarmChild(cgroup: cgroup)
                if child == nil { cgroup.remove() }
            }
            if !warm.add(child), let child {  // closed meanwhile
                child.dismiss()
                child.cgroup.remove(waiting: .seconds(2))
            }
        }
    }

    /// A new cgroup, `run-N` in each hierarchy, with `limits` written.
    /// A cgroup for a warm child to wait in (its limits are set when a task takes it): an emptied one
    /// kept from an earlier run, else a new one; nil when none can be made.
    private func idleCgroup() -> TaskCgroup? {
        pool.take() ?? (try? freshCgroup(limits: TaskCgroup.Limits(memory: nil, cpuMillis: nil)))
    }

    private func freshCgroup(limits: TaskCgroup.Limits) throws(LaunchError) -> TaskCgroup {
        var cgroup = TaskCgroup()
        // Reused across runs where the memory peak can be reset (v1, or no memory controller): a v2
        // `memory.peak` resets only per open file, so those cgroups serve one run each.
        let reusable = !hierarchies.contains { $0.v2 && $0.kinds.contains(.memory) }
        cgroup.pool = reusable ? pool : nil
        let name = "run-\(pool.nextNumber())"
        for hierarchy in hierarchies {
            let dir = hierarchy.base + "/" + name
            guard mkdir(dir, 0o755) == 0 || errno == EEXIST else {
                let reason = String(cString: strerror(errno))
                cgroup.remove()
                throw LaunchError(description: "cannot create the task's cgroup \(dir): \(reason)")
            }
            cgroup.dirs.append(dir)
            if hierarchy.kinds.contains(.unified) { cgroup.unified = dir }
            if hierarchy.kinds.contains(.memory) { cgroup.memory = (dir, hierarchy.v2) }
            if hierarchy.kinds.contains(.pids) { cgroup.pids = dir }
            if hierarchy.kinds.contains(.cpu) { cgroup.cpu = (dir, hierarchy.v2) }
            if hierarchy.kinds.contains(.cpuacct) { cgroup.cpuacct = (dir, hierarchy.v2) }
        }
        do {
            if let dir = cgroup.pids, policy.pidsMax > 0 {
                try Self.write("\(policy.pidsMax)", to: dir + "/pids.max")
            }
            try cgroup.prepare(limits: limits, fresh: true)
        } catch {
            cgroup.remove()
            throw error
        }
        return cgroup
    }

    /// The memory limit and the CPU weight a run with these requirements gets.
    func limits(for resources: ResourceVector) -> TaskCgroup.Limits {
        TaskCgroup.Limits(memory: policy.memory.bytes(forRequirement: resources.ram),
                          cpuMillis: resources.milliCPUs > 0 ? resources.milliCPUs : nil)
    }

    /// Removes the agent's own directories (empty once its tasks are gone), the warm children and the
    /// idle cgroups first.
    public func close() {
        for child in warm.close() {
            child.dismiss()
            child.cgroup.remove(waiting: .seconds(2))
        }
        for cgroup in pool.drain() { cgroup.remove(waiting: .seconds(2)) }
        for hierarchy in hierarchies { rmdir(hierarchy.base) }
    }

    // MARK: - Finding the hierarchies

    struct Mount: Sendable { var point: String; var root: String; var controllers: Set<String> }

    /// cgroup mounts from /proc/self/mountinfo: the v2 one and each v1 controller's.
    static func mounts(mountinfo: String? = nil) -> (v2: Mount?, v1: [String: Mount]) {
        let text = mountinfo ?? ProcessLedger.readProcFile("/proc/self/mountinfo").map { String(decoding: $0, as: UTF8.self) } ?? ""
        var v2: Mount?
        var v1: [String: Mount] = [:]
        for line in text.split(separator: "\n") {
            // id parent major:minor root mount-point options [optional...] - fstype source super-options
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2 else { continue }
            let left = halves[0].split(separator: " "), right = halves[1].split(separator: " ")
            guard left.count >= 5, right.count >= 3 else { continue }
            let root = String(left[3]), point = Self.unescape(String(left[4]))
            switch right[0] {
            case "cgroup2":
                if v2 == nil { v2 = Mount(point: point, root: root, controllers: []) }
            case "cgroup":
                let controllers = Set(right[2].split(separator: ",").map(String.init))
                for name in controllers where v1[name] == nil { v1[name] = Mount(point: point, root: root, controllers: controllers) }
            default: continue
            }
        }
        return (v2, v1)
    }

    /// This process's cgroup in each hierarchy, from /proc/self/cgroup.
    static func memberships(text: String? = nil) -> (v2: String?, v1: [String: String]) {
        let text = text ?? ProcessLedger.readProcFile("/proc/self/cgroup").map { String(decoding: $0, as: UTF8.self) } ?? ""
        var v2: String?
        var v1: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            if fields[0] == "0" && fields[1].isEmpty {
                v2 = String(fields[2])
            } else {
                for name in fields[1].split(separator: ",") { v1[String(name)] = String(fields[2]) }
            }
        }
        return (v2, v1)
    }

    /// A cgroup path as seen from a mount whose root is `root` ("" for the mount's own root).
    static func relative(_ path: String, to root: String) -> String {
        var rest = root == "/" ? path : (path.hasPrefix(root) ? String(path.dropFirst(root.count)) : path)
        while rest.hasSuffix("/") { rest.removeLast() }
        return rest
    }

    /// mountinfo escapes spaces and such as \040.
    static func unescape(_ text: String) -> String {
        guard text.contains("\\") else { return text }
        var out = "", chars = Array(text), i = 0
        while i < chars.count {
            if chars[i] == "\\", i + 3 < chars.count, let code = UInt8(String(chars[(i + 1)...(i + 3)]), radix: 8) {
                out.append(Character(UnicodeScalar(code)))
                i += 4
            } else {
                out.append(chars[i])
                i += 1
            }
        }
        return out
    }

    /// In cgroup v2 a cgroup with controllers for its children holds no process itself. Under systemd
    /// with `Delegate=yes` the agent is alone in its unit's cgroup: it moves itself into a leaf
    /// (`agent`) and enables memory, pids and cpu for its children. Elsewhere (a shell, a test) it only
    /// makes its directory beside the processes there: membership and `cgroup.kill`, no limits.
    static func prepareV2(ownDir: String, isRoot: Bool, pid: pid_t, logger: Logger) -> (base: String, controllers: Set<String>)? {
        let procs = Self.read(ownDir + "/cgroup.procs")?.split(separator: "\n").compactMap { pid_t($0) } ?? []
        if !isRoot, procs == [pid] {
            let leaf = ownDir + "/agent"
            if mkdir(leaf, 0o755) == 0 || errno == EEXIST, (try? Self.write("\(pid)", to: leaf + "/cgroup.procs")) != nil {
                let available = Self.controllers(ownDir + "/cgroup.controllers")
                for name in wanted.values where available.contains(name) {
                    try? Self.write("+\(name)", to: ownDir + "/cgroup.subtree_control")
                }
            }
        }
        removeStale(in: ownDir, logger: logger)
        let base = ownDir + "/paddock-\(pid)"
        guard mkdir(base, 0o755) == 0 || errno == EEXIST else { return nil }
        let available = Self.controllers(base + "/cgroup.controllers")
        for name in wanted.values where available.contains(name) {
            try? Self.write("+\(name)", to: base + "/cgroup.subtree_control")
        }
        return (base, Self.controllers(base + "/cgroup.subtree_control"))
    }

    static func controllers(_ path: String) -> Set<String> {
        Set((Self.read(path) ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
    }

    /// `paddock-<pid>` directories of agents no longer alive: what runs in them is killed (the master has
    /// handed those tasks on) and the directories removed.
    static func removeStale(in parent: String, logger: Logger) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: parent) else { return }
        for name in names where name.hasPrefix("paddock-") {
            guard let owner = pid_t(name.dropFirst("paddock-".count)), owner != getpid(),
                  kill(owner, 0) != 0 && errno == ESRCH else { continue }
            let base = parent + "/" + name
            let tasks = ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [])
                .filter { Self.read(base + "/" + $0 + "/cgroup.procs") != nil }
            var killed = 0
            for task in tasks {
                var cgroup = TaskCgroup()
                cgroup.dirs = [base + "/" + task]
                if FileManager.default.fileExists(atPath: base + "/" + task + "/cgroup.kill") { cgroup.unified = base + "/" + task }
                killed += cgroup.killAll() ?? 0
                cgroup.remove(waiting: .seconds(2))
            }
            rmdir(base)
            if killed > 0 { logger.warning("killed \(killed) process(es) left in \(base) by an agent no longer running") }
        }
    }

    // MARK: - Files

    /// A control file's value without the newline around it (Foundation's `trimmingCharacters` bridges
    /// through NSString: several of these per run showed in the agent's profile).
    static func trimmed(_ text: String) -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        guard let first = text.firstIndex(where: { !isSpace($0) }), let last = text.lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return text[first...last]
    }

    static func read(_ path: String) -> String? {
        ProcessLedger.readProcFile(path).map { String(decoding: $0, as: UTF8.self) }
    }

    static func write(_ value: String, to path: String) throws(LaunchError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw LaunchError(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { Glibc.close(fd) }
        let written = value.withCString { Glibc.write(fd, $0, strlen($0)) }
        guard written >= 0 else { throw LaunchError(description: "cannot write \(value) to \(path): \(String(cString: strerror(errno)))") }
    }
}

/// One run's cgroup: a directory in each hierarchy the agent uses (the child joins them all before it
/// execs), with what the kernel counts for it.
struct TaskCgroup: Sendable {
    var dirs: [String] = []
    /// The v2 directory: `cgroup.kill` and the membership that nothing in the task can leave.
    var unified: String?
    var memory: (path: String, v2: Bool)?
    var pids: String?
    var cpu: (path: String, v2: Bool)?
    var cpuacct: (path: String, v2: Bool)?
    var memoryLimit: Int64?
    /// Where it goes when its run ends (emptied, for the next run); nil: it is removed.
    var pool: CgroupPool?
    /// What the counters said when this run began (a reused cgroup's count from earlier runs).
    var baselineCPUSeconds: Double = 0
    var baselineOOMKills = 0
    /// The limits now written in its files (a new cgroup's: no memory limit, the default weight).
    var applied = Limits(memory: nil, cpuMillis: nil)
    /// Its control files, kept open while it serves runs (shared by the copies of this value).
    var files = CgroupFiles()

    struct Limits: Sendable, Equatable {
        /// nil: no limit.
        var memory: Int64?
        /// nil: the default weight (one CPU's).
        var cpuMillis: Int64?
    }

    /// Sets this run's limits (only those that differ from what is written) and, for a reused
    /// cgroup, reads the baselines of its counters and resets its memory peak.
    mutating func prepare(limits: Limits, fresh: Bool = false) throws(LaunchError) {
        if let (dir, v2) = memory, limits.memory != applied.memory {
            memoryLimit = limits.memory
            if v2 {
                try files.write(limits.memory.map(String.init) ?? "max", to: dir + "/memory.max")
                // The limit bounds what the task holds, not what it holds in RAM: no swap beyond it.
                try? files.write(limits.memory == nil ? "max" : "0", to: dir + "/memory.swap.max")
            } else {
                // v1 keeps limit <= memsw.limit at every moment: raise memsw first, lower it last.
                let value = limits.memory.map(String.init) ?? "-1"
                let raising = limits.memory.map { new in applied.memory.map { new > $0 } ?? false } ?? true
                if raising { try? files.write(value, to: dir + "/memory.memsw.limit_in_bytes") }
                try files.write(value, to: dir + "/memory.limit_in_bytes")
                if !raising { try? files.write(value, to: dir + "/memory.memsw.limit_in_bytes") }
            }
        } else if memory != nil {
            memoryLimit = limits.memory
        }
        if let (dir, v2) = cpu, limits.cpuMillis != applied.cpuMillis {
            // Shares in proportion to the CPUs asked for (v2's default weight 100 is one CPU; v1's 1024).
            let millis = limits.cpuMillis ?? 1000
            if v2 {
                try files.write("\(min(10_000, max(1, millis / 10)))", to: dir + "/cpu.weight")
            } else {
                try files.write("\(min(262_144, max(2, millis * 1024 / 1000)))", to: dir + "/cpu.shares")
            }
        }
        applied = limits
        guard !fresh else { return }
        baselineCPUSeconds = cpuSecondsCounted() ?? 0
        baselineOOMKills = oomKillsCounted()
        if let (dir, v2) = memory, !v2 {
            try files.write("0", to: dir + "/memory.max_usage_in_bytes")
        }
    }

    /// Back to the pool once the run is over and nothing of it is left; otherwise removed (waiting
    /// up to `waiting` for what was killed to leave). True when nothing of the run was left in it.
    /// `knownEmpty`: the caller read it empty after the run's leader was reaped (nothing can join a
    /// cgroup with no member and outside the pool), so it is not read again (a v1 `cgroup.procs`
    /// read builds a pid list each time).
    @discardableResult
    func recycle(waiting: Duration, knownEmpty: Bool = false) -> Bool {
        if let pool, knownEmpty || members().isEmpty, pool.put(self) { return true }
        return remove(waiting: waiting)
    }

    /// The `cgroup.procs` files to join, opened for the launch (the caller closes them).
    func openProcsFiles() throws(LaunchError) -> [Int32] {
        var fds: [Int32] = []
        for dir in dirs {
            let fd = open(dir + "/cgroup.procs", O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else {
                let reason = String(cString: strerror(errno))
                fds.forEach { _ = Glibc.close($0) }
                throw LaunchError(description: "cannot open \(dir)/cgroup.procs: \(reason)")
            }
            fds.append(fd)
        }
        return fds
    }

    /// Pids in the cgroup now (from the first directory: every process joined them all).
    func members() -> [pid_t] { readMembers() ?? [] }

    /// As `members`, nil when `cgroup.procs` could not be read.
    private func readMembers() -> [pid_t]? {
        guard let dir = unified ?? dirs.first else { return [] }
        // Opened afresh each time: a v1 cgroup.procs kept open may answer a list up to a second old.
        return Containment.read(dir + "/cgroup.procs").map { $0.split(separator: "\n").compactMap { pid_t($0) } }
    }

    /// SIGKILL to every process in the cgroup, whatever process group or session it made for itself.
    /// Returns how many processes were there (nil: its `cgroup.procs` could not be read, then it is
    /// killed through `cgroup.kill` where there is one, and not known empty).
    @discardableResult
    func killAll() -> Int? {
        let before = readMembers()?.count
        if before == 0 { return 0 }  // nothing in it can fork: nobody is left to
        if let dir = unified, (try? Containment.write("1", to: dir + "/cgroup.kill")) != nil { return before }
        // v1 only: kill what is listed until nothing is (a process forking meanwhile is listed next round;
        // pids.max bounds how many it can make).
        for _ in 0..<100 {
            let pids = members()
            if pids.isEmpty { break }
            pids.forEach { kill($0, SIGKILL) }
        }
        return before
    }

    /// Signals every process in the cgroup (SIGTERM on a stop, before the SIGKILL of the grace's end).
    func signalAll(_ signal: Int32) {
        members().forEach { kill($0, signal) }
    }

    /// True when the kernel's OOM killer killed a process of this cgroup during this run.
    func oomKilled() -> Bool { oomKillsCounted() > baselineOOMKills }

    /// OOM kills the cgroup has counted since it was made.
    func oomKillsCounted() -> Int {
        guard let (dir, v2) = memory else { return 0 }
        let text = files.read(dir + (v2 ? "/memory.events" : "/memory.oom_control")) ?? ""
        for line in text.split(separator: "\n") where line.hasPrefix("oom_kill ") {
            return Int(line.dropFirst("oom_kill ".count)) ?? 0
        }
        return 0
    }

    /// CPU seconds of every process that ever ran in the cgroup.
    func cpuSecondsCounted() -> Double? {
        guard let (dir, v2) = cpuacct else { return nil }
        if v2 {
            let stat = files.read(dir + "/cpu.stat") ?? ""
            for line in stat.split(separator: "\n") where line.hasPrefix("usage_usec ") {
                return Double(line.dropFirst("usage_usec ".count)).map { $0 / 1e6 }
            }
            return nil
        }
        return files.read(dir + "/cpuacct.usage").flatMap { Double(Containment.trimmed($0)) }
            .map { $0 / 1e9 }
    }

    /// What the cgroup's own counters say: CPU time of every process that ever ran in it, memory now
    /// and at its peak (page cache charged to the task included: what counts against its limit).
    func usage() -> TaskUsage? {
        let cpuSeconds = cpuSecondsCounted().map { max(0, $0 - baselineCPUSeconds) }
        var rss: Int64?, peak: Int64?
        if let (dir, v2) = memory {
            rss = counter(dir + (v2 ? "/memory.current" : "/memory.usage_in_bytes"))
            // v2's peak is kept per open file: read through a fresh one, as before.
            peak = v2 ? Self.number(dir + "/memory.peak") : counter(dir + "/memory.max_usage_in_bytes")
        }
        guard cpuSeconds != nil || rss != nil else { return nil }
        let processes = pids.flatMap { counter($0 + "/pids.current") }.map(Int.init) ?? members().count
        return TaskUsage(cpuSeconds: cpuSeconds ?? 0, rss: rss ?? 0, peakRSS: max(peak ?? 0, rss ?? 0), processes: processes)
    }

    /// A counter through the cgroup's open files.
    func counter(_ path: String) -> Int64? {
        files.read(path).flatMap { Int64(Containment.trimmed($0)) }
    }

    /// A control file's number, read through a file opened for this read.
    static func number(_ path: String) -> Int64? {
        Containment.read(path).flatMap { Int64(Containment.trimmed($0)) }
    }

    /// Removes the directories once their processes are gone (a killed process leaves its cgroup when
    /// it is reaped; its children, reparented to init, a moment later).
    /// True when every directory is gone (a cgroup with a process in it cannot be removed).
    @discardableResult
    func remove(waiting: Duration = .zero) -> Bool {
        files.closeAll()
        let deadline = ContinuousClock.now + waiting
        var removed = true
        for dir in dirs.reversed() {
            while rmdir(dir) != 0 {
                if errno == ENOENT { break }
                if errno != EBUSY || ContinuousClock.now >= deadline {
                    removed = false
                    break
                }
                usleep(5_000)
            }
        }
        return removed
    }
}

/// Emptied cgroups of ended runs, kept for the next runs (see `Containment.makeCgroup`).
final class CgroupPool: Sendable {
    private let idle = Mutex<[TaskCgroup]>([])
    private let numbers = Atomic<Int>(0)
    /// More idle than this are removed: a host's slots rarely exceed it.
    static let capacity = 256

    func take() -> TaskCgroup? { idle.withLock { $0.popLast() } }

    /// False when the pool is full (the caller removes the cgroup).
    func put(_ cgroup: TaskCgroup) -> Bool {
        idle.withLock { idle in
            guard idle.count < Self.capacity else { return false }
            idle.append(cgroup)
            return true
        }
    }

    func drain() -> [TaskCgroup] { idle.withLock { idle in defer { idle = [] }; return idle } }

    /// Names new cgroups `run-N`: a reused cgroup serves many tasks, so it is not named after one.
    func nextNumber() -> Int { numbers.add(1, ordering: .relaxed).newValue }
}
