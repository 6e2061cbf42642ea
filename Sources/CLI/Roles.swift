import ArgumentParser
import Foundation
import PaddockClient
import PaddockFootprint
import Logging
import PaddockAgent
import PaddockMaster
import PaddockProtocol
import ServiceLifecycle

/// Options every role shares.
struct LogOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    func logger(_ label: String) -> Logger {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: label)
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        return logger
    }
}

struct MasterOptions: ParsableArguments {
    @Option(help: "Address to listen on, HOST:PORT (port 0 picks a free one).")
    var listen: String = "127.0.0.1:8420"
    @Option(help: "Directory of the embedded SQLite store.")
    var data: String = "./paddock-data"
    @Option(help: "The store: 'sqlite' (embedded, in --data) or postgres://USER@HOST[:PORT]/DB, shared by several masters.")
    var store: String = "sqlite"
    @Option(help: "File holding the PostgreSQL password (else the URL's, else PGPASSWORD).")
    var storePasswordFile: String?
    @Option(help: "Token agents present to enroll.")
    var joinToken: String?
    @Option(help: "File holding the join token (keeps it off the command line).")
    var joinTokenFile: String?
    @Option(help: "Token users present (Authorization: Bearer).")
    var adminToken: String?
    @Option(help: "File holding the admin token.")
    var adminTokenFile: String?
    @Option(help: "The URL agents and users reach this master by (a frontend's), for links and the agent install script.")
    var publicURL: String?
    @Option(help: "A paddock .deb to serve to new agents at /packages/ (with its .sha256 beside it), for /install-agent.sh.")
    var agentPackage: String?
    @Option(help: "An agent silent this long is offline and its leases expire (e.g. 30s).")
    var leaseTimeout: String = "30s"
    @Option(help: "After this many failed runs of one job on one agent, that agent gets no more of its tasks.")
    var blocklistAfter: Int = 3
    @Option(help: ArgumentHelp(
        "A frontend (address or CIDR range, e.g. 10.0.0.5 or 10.0.0.0/8) whose X-Forwarded-For names the client.",
        discussion: "Repeatable, or comma-separated. Requests from other peers are attributed to the peer itself."))
    var trustedProxy: [String] = []
    @Option(help: "Serve HTTPS with this certificate (PEM, its chain after it); needs --tls-key.")
    var tlsCert: String?
    @Option(help: "The private key (PEM) of --tls-cert.")
    var tlsKey: String?
    @Option(help: ArgumentHelp("Serve HTTPS with a certificate of a CA of its own, made in this directory on the first start.",
                               discussion: "Prints the CA's fingerprint; agents and the CLI trust DIR/ca.pem with --ca-file."))
    var tlsSelfSigned: String?
    @Option(help: ArgumentHelp("Requests per second and burst of each token and each address without one, RATE/BURST or off.",
                               discussion: "Past it the master answers 429 with Retry-After."))
    var rateLimit: String = RateLimit.clientDefault.description
    @Option(help: "Requests per second and burst of each agent, RATE/BURST or off (agents are not limited by default).")
    var agentRateLimit: String = "off"
    @Option(help: "Close a connection that has not sent a whole request for this long (e.g. 30s); long-polls are not affected.")
    var idleTimeout: String = "75s"
    @Option(help: "Delete the logs of tasks that ended this long ago (e.g. 30d); kept forever by default.")
    var logRetention: String?
    @Option(help: "Keep each job's logs within this size (e.g. 10GiB): the logs of its tasks that ended first go; no bound by default.")
    var logRetentionBytes: String?

    func config(joinToken: String, adminToken: String) throws -> MasterConfig {
        guard (1...1000).contains(blocklistAfter) else { throw ValidationError("--blocklist-after is between 1 and 1000") }
        var config = try Self.config(listen: listen, leaseTimeout: leaseTimeout, joinToken: joinToken, adminToken: adminToken)
        config.blocklistAfter = blocklistAfter
        config.trustedProxies = try Self.trustedProxies(trustedProxy)
        try applyLimits(to: &config)
        switch (tlsCert, tlsKey) {
        case let (cert?, key?):
            for file in [cert, key] where !FileManager.default.isReadableFile(atPath: file) {
                throw ValidationError("cannot read \(file)")
            }
            config.tls = TLSFiles(certificateChain: cert, privateKey: key)
        case (nil, nil): break
        default: throw ValidationError("--tls-cert and --tls-key go together")
        }
        if tlsSelfSigned != nil, config.tls != nil { throw ValidationError("--tls-self-signed replaces --tls-cert and --tls-key") }
        if let publicURL {
            // It is written into the install script that new hosts run as root: an http(s) URL and nothing else.
            if let problem = ConfigFile.check("public-url", publicURL, .url) { throw ValidationError(problem) }
            config.publicURL = publicURL
        }
        return config
    }

    static let longestRetention: Double = 10 * 365 * 86400

    /// Names a self-signed certificate carries beside this host's own: the listen address when it is
    /// a specific one, and the public URL's host.
    func certificateNames(_ config: MasterConfig) -> [String] {
        var names = [config.host]
        if let host = config.publicURL.flatMap({ URL(string: $0)?.host }) { names.append(host) }
        return names.filter { !$0.isEmpty }
    }

    /// `--rate-limit`, `--agent-rate-limit`, `--idle-timeout` and `--log-retention`.
    func applyLimits(to config: inout MasterConfig) throws {
        guard let clients = RateLimit.parse(rateLimit) else { throw ValidationError("--rate-limit is RATE/BURST (e.g. 1000/2000) or off") }
        guard let agents = RateLimit.parse(agentRateLimit) else { throw ValidationError("--agent-rate-limit is RATE/BURST or off") }
        guard let idle = DurationText.parse(idleTimeout), idle >= 0.1 else {
            throw ValidationError("--idle-timeout is a duration of at least 0.1s, e.g. 30s")
        }
        config.rateLimit = clients
        config.agentRateLimit = agents
        config.idleTimeout = idle
        if let logRetention {
            guard let retention = DurationText.parse(logRetention, maximum: Self.longestRetention), retention >= 1 else {
                throw ValidationError("--log-retention is a duration of at least 1s, e.g. 30d")
            }
            config.logRetention = retention
        }
        if let logRetentionBytes {
            guard let bytes = ByteSize.parse(logRetentionBytes), bytes >= 1 << 20 else {
                throw ValidationError("--log-retention-bytes is a size of at least 1MiB, e.g. 10GiB")
            }
            config.logRetentionBytes = bytes
        }
    }

    /// `--trusted-proxy` values; each may hold several, comma-separated (as the config file and
    /// `PADDOCK_TRUSTED_PROXY` give a list).
    static func trustedProxies(_ values: [String]) throws -> TrustedProxies {
        let specs = values.flatMap { $0.split(separator: ",") }.map(String.init)
            .filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        do { return try TrustedProxies(specs) } catch { throw ValidationError("--trusted-proxy: \(error)") }
    }

    static func config(listen: String, leaseTimeout: String, joinToken: String, adminToken: String) throws -> MasterConfig {
        let parts = listen.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count >= 2, let port = Int(parts[parts.count - 1]), (0...65535).contains(port) else {
            throw ValidationError("--listen is HOST:PORT, e.g. 127.0.0.1:8420")
        }
        guard let lease = DurationText.parse(leaseTimeout), lease >= 0.5 else {
            throw ValidationError("--lease-timeout is a duration of at least 0.5s, e.g. 30s")
        }
        let host = parts.dropLast().joined(separator: ":")
        return MasterConfig(host: host.isEmpty ? "0.0.0.0" : host, port: port, joinToken: joinToken,
                            adminToken: adminToken, leaseTimeout: lease)
    }

    func openStore(logger: Logger) async throws -> SQLStore {
        if store == "sqlite" { return try Self.openStore(data: data) }
        guard PostgresLocation.isPostgresURL(store) else {
            throw ValidationError("--store is 'sqlite' or postgres://USER@HOST[:PORT]/DB")
        }
        let location: PostgresLocation
        do { location = try PostgresLocation(url: store, passwordFile: storePasswordFile) } catch let error as PaddockError {
            throw ValidationError(error.message)
        }
        logger.notice("store: PostgreSQL at \(location)")
        return try await SQLStore.postgres(location, logger: logger)
    }

    static func openStore(data: String) throws -> SQLStore {
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        return try SQLStore.sqlite(path: data + "/paddock.sqlite")
    }
}

struct AgentOptions: ParsableArguments {
    @Option(help: "Name of this agent (default: the host name).")
    var name: String?
    @Option(help: "Directory for the agent's credential and its tasks' work dirs.")
    var workDir: String?
    @Option(help: "CPUs this agent offers (default: all it may use).")
    var cpus: Double?
    @Option(help: "RAM this agent offers, e.g. 8GiB (default: the host's).")
    var ram: String?
    @Option(help: "Scratch disk this agent offers, e.g. 100GiB (default: free space of the work dir).")
    var disk: String?
    @Option(help: "GPUs this agent offers (default: those nvidia-smi lists).")
    var gpus: Int?
    @Option(help: "Comma-separated tags, e.g. gpu,linux.")
    var tags: String = ""
    @Option(help: "A host attribute, NAME=VALUE (custom, e.g. host_config=HostConfigA: the tag custom.host_config:HostConfigA; comma-separated or repeated; os.family and cpu.arch are detected).")
    var attr: [String] = []
    @Option(help: "A host amount, NAME=NUMBER, that tasks may require a range of (custom, e.g. licenses=4: OpenJD's amount.custom.licenses; comma-separated or repeated; gpu.memory, the MiB of the smallest GPU, is detected).")
    var amount: [String] = []
    @Option(help: "A JSON file of path mapping rules for the tasks (OpenJD pathmapping-1.0: {\"version\": \"pathmapping-1.0\", \"path_mapping_rules\": [{\"source_path_format\": \"POSIX\", \"source_path\": ..., \"destination_path\": ...}]}).")
    var pathMapping: String?
    @Option(help: "At most this many tasks at once (default: the CPU count).")
    var slots: Int?
    @Option(help: "Assigned tasks to hold beyond what runs, to start at once when room frees (others may steal them): a number, or auto (one per slot while the last runs took under half a second, up to eight while they took under 50 ms, none otherwise; the default).")
    var prefetch: String = "auto"
    @Option(help: "RAM kept for the host when the agent's RAM is detected (not given with --ram).")
    var reserveRAM: String = "1GiB"
    @Option(help: "Each task's memory limit (its cgroup's): ram (its ram requirement), ram+25% (with a margin), or none.")
    var taskMemoryLimit: String = "ram"
    @Option(help: "Each task's process and thread limit (its cgroup's pids.max); 0 for none.")
    var taskPidsMax: Int = 16_384
    @Option(help: "Run each task in its own cgroup where the agent may (auto), or never (off).")
    var taskCgroups: String = "auto"
    @Option(help: "Run tasks as this user (a name or a uid), not as the agent's: they then cannot read its secrets. Needs root.")
    var taskUser: String?
    @Option(help: "Children kept waiting in their cgroups for the next tasks, at most one per slot: auto (up to 4 where joining a cgroup waits out an RCU grace period on this host), or a number (0: none).")
    var warmChildren: String = "auto"
    @Option(help: "How long an OpenJD session with no task running stays open for more of its tasks before its environments are exited, e.g. 5s.")
    var sessionLinger: String = "5s"

    func config(master: URL, joinToken: String, defaultWorkDir: String) throws -> AgentConfig {
        let cpus = self.cpus ?? Double(ResourceDetection.cpus())
        guard cpus.isFinite, cpus > 0, cpus <= Limits.maxCPUs else { throw ValidationError("--cpus must be > 0") }
        let ram = try ram.map(Self.size) ?? ResourceDetection.ram(reserve: try Self.size(reserveRAM))
        let workDir = self.workDir ?? defaultWorkDir
        try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        let disk = try disk.map(Self.size) ?? Self.freeDisk(workDir)
        let gpus = self.gpus ?? ResourceDetection.gpus()
        guard (0...Limits.maxGPUs).contains(Int64(gpus)) else { throw ValidationError("--gpus must be ≥ 0") }
        var tagList = tags.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let declared = attr.flatMap { $0.split(separator: ",") }.map(String.init).filter { !$0.isEmpty }
        do throws(HostAttributes.Problem) {
            tagList += try HostAttributeDetection.tags(declared: declared)
        } catch {
            throw ValidationError("--attr: \(error)")
        }
        let amounts = amount.flatMap { $0.split(separator: ",") }.map(String.init).filter { !$0.isEmpty }
        do throws(HostAmounts.Problem) {
            let declaredAmounts = try amounts.map(HostAmounts.declared)
            tagList += declaredAmounts
            let gpuMemoryTag = HostAmounts.agentPrefix + HostAmounts.gpuMemory + ":"
            if gpus > 0, !declaredAmounts.contains(where: { $0.hasPrefix(gpuMemoryTag) }), let memory = ResourceDetection.gpuMemoryMiB() {
                tagList.append(try HostAmounts.tag(HostAmounts.gpuMemory, memory))
            }
        } catch {
            throw ValidationError("--amount: \(error)")
        }
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "agent"
        let name = self.name ?? String(host.filter { $0.isLetter || $0.isNumber || "-_.".contains($0) })
        guard !name.isEmpty else { throw ValidationError("--name is required on this host") }
        if let slots, slots < 1 { throw ValidationError("--slots must be ≥ 1") }
        guard let prefetchPolicy = PrefetchPolicy(prefetch) else {
            throw ValidationError("--prefetch is auto or a number between 0 and \(Limits.claimSlots)")
        }
        var config = AgentConfig(masterURL: master, joinToken: joinToken, name: name, workDir: workDir,
                                 resources: ResourceVector(cpus: cpus, ram: ram, disk: disk, gpus: Int64(gpus)),
                                 tags: tagList, slots: slots)
        config.prefetch = prefetchPolicy
        if let pathMapping {
            guard let data = FileManager.default.contents(atPath: pathMapping) else { throw ValidationError("--path-mapping: cannot read \(pathMapping)") }
            do {
                config.pathMapping = try WireJSON.decoder().decode(PathMappingRules.self, from: data)
            } catch {
                throw ValidationError("--path-mapping \(pathMapping): \(WireJSON.describe(error).field.map { $0 + ": " } ?? "")\(WireJSON.describe(error).message)")
            }
        }
        guard let memory = TaskMemoryLimit(taskMemoryLimit) else {
            throw ValidationError("--task-memory-limit is ram, ram+N% (a margin, e.g. ram+25%) or none")
        }
        guard taskPidsMax >= 0 else { throw ValidationError("--task-pids-max must be ≥ 0 (0: no limit)") }
        guard ["auto", "off"].contains(taskCgroups) else { throw ValidationError("--task-cgroups is auto or off") }
        if let taskUser {
            guard let user = TaskUser.lookUp(taskUser) else { throw ValidationError("--task-user: no user \(taskUser) on this host") }
            if let reason = user.cannotSwitchReason() { throw ValidationError("--task-user \(taskUser): \(reason)") }
            config.taskUser = user
        }
        if warmChildren != "auto" {
            guard let count = Int(warmChildren), (0...64).contains(count) else {
                throw ValidationError("--warm-children is auto or a number between 0 and 64")
            }
            config.containment.warmChildren = count
        }
        guard let linger = DurationText.parse(sessionLinger), linger >= 0, linger <= 86_400 else {
            throw ValidationError("--session-linger is a duration such as 5s or 2m (at most a day)")
        }
        config.sessionLinger = .milliseconds(Int(linger * 1000))
        config.containment.memory = memory
        config.containment.pidsMax = taskPidsMax
        config.containment.enabled = taskCgroups == "auto"
        return config
    }

    static func size(_ text: String) throws -> Int64 {
        guard let bytes = ByteSize.parse(text) else { throw ValidationError("'\(text)' is not a size such as 8GiB or 512MiB") }
        return bytes
    }

    static func freeDisk(_ path: String) -> Int64 {
        let attributes = try? FileManager.default.attributesOfFileSystem(forPath: path)
        return (attributes?[.systemFreeSize] as? NSNumber)?.int64Value ?? 0
    }
}

/// Runs services in one group that stops gracefully on SIGTERM or SIGINT.
/// `deadline`: how long a graceful stop may take before what is left is cancelled.
func runServices(_ services: [any Service], logger: Logger, deadline: Duration? = nil) async throws {
    var configuration = ServiceGroupConfiguration(
        services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger)
    configuration.maximumGracefulShutdownDuration = deadline
    let group = ServiceGroup(configuration: configuration)
    try await group.run()
}

/// Prints a line on stdout at once (scripts and tests read it while the process runs).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// A secret kept in a file: its first line, trimmed.
func readSecret(_ path: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
    let secret = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init)?
        .trimmingCharacters(in: .whitespaces) ?? ""
    guard !secret.isEmpty else { throw ValidationError("\(path) is empty") }
    return secret
}

func randomToken() -> String {
    var generator = SystemRandomNumberGenerator()
    return (0..<2).map { _ in String(generator.next() as UInt64, radix: 36) }.joined()
}

struct MasterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "master", abstract: "Run a master (REST node).")
    @OptionGroup var options: MasterOptions
    @OptionGroup var log: LogOptions

    func run() async throws {
        guard let join = try options.joinToken ?? options.joinTokenFile.map(readSecret),
              let admin = try options.adminToken ?? options.adminTokenFile.map(readSecret) else {
            throw ValidationError("a join token and an admin token are required: --join-token(-file), --admin-token(-file), "
                + "PADDOCK_JOIN_TOKEN, PADDOCK_ADMIN_TOKEN, or the config file")
        }
        let logger = log.logger("paddock.master")
        var config = try options.config(joinToken: join, adminToken: admin)
        if !config.trustedProxies.networks.isEmpty && config.publicURL == nil {
            logger.notice("behind trusted proxies without --public-url: the install script names the master by the Host header")
        }
        if let path = options.agentPackage { config.agentPackage = try AgentPackage.load(path) }
        if let directory = options.tlsSelfSigned {
            let prepared = try SelfSignedTLS.prepare(directory: directory, names: options.certificateNames(config))
            config.tls = prepared.files
            let made = prepared.made.isEmpty ? "" : " (made now: \(prepared.made.joined(separator: ", ")))"
            say("TLS: certificate of the farm's own CA \(prepared.caFile)\(made), SHA-256 fingerprint \(prepared.caFingerprint): "
                + "copy it to agents and users (--ca-file, PADDOCK_CA_FILE) and check the fingerprint there")
        }
        let master = Master(config: config, store: try await options.openStore(logger: logger))
        let services = try await master.services(logger: logger) { url in say("paddock master listening on \(url)") }
        try await runServices(services + [ResidentTrimService(every: .seconds(60), trim: ResidentTrim("master", logger: logger))],
                              logger: logger)
    }
}

extension StopPolicy: ExpressibleByArgument {}

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "agent", abstract: "Run an agent on this host.",
                                                    subcommands: [AgentResetCommand.self])
    @Option(help: "URL of the master (or its frontend).")
    var master: String = ProcessInfo.processInfo.environment["PADDOCK_MASTER"] ?? "http://127.0.0.1:8420"
    @Option(help: "Join token, to enroll the first time.")
    var joinToken: String?
    @Option(help: "File holding the join token.")
    var joinTokenFile: String?
    @Option(help: "What SIGTERM does with running tasks: requeue (stop them, back to the queue at once) or drain (let them finish).")
    var onStop: StopPolicy = .requeue
    @Option(help: "Trust only the CA certificates in this PEM file for an https:// master (env PADDOCK_CA_FILE).")
    var caFile: String = ProcessInfo.processInfo.environment["PADDOCK_CA_FILE"] ?? ""
    @OptionGroup var options: AgentOptions
    @OptionGroup var log: LogOptions

    func run() async throws {
        guard let url = URL(string: master), url.scheme == "http" || url.scheme == "https" else {
            throw ValidationError("--master must be an http(s) URL")
        }
        let join = try joinToken ?? joinTokenFile.map(readSecret) ?? ""
        let home = ProcessInfo.processInfo.environment["HOME"] ?? "."
        var config = try options.config(master: url, joinToken: join, defaultWorkDir: home + "/.paddock/agent")
        config.onStop = onStop
        config.releasesIdlePages = true
        if !caFile.isEmpty {
            // Read now: a CA file that cannot be used stops the agent with that error, not at its first call.
            do { _ = try MasterClient(baseURL: url, token: "", caFile: caFile) } catch {
                throw ValidationError("--ca-file \(caFile): \(error)")
            }
            config.caFile = caFile
        }
        let logger = log.logger("paddock.agent")
        // Giving the tasks back takes their kill grace and a few round trips: a stop never takes
        // longer than this (draining waits for the tasks: the unit's stop timeout bounds it).
        try await runServices(try Agent(config: config).services(logger: logger), logger: logger,
                              deadline: onStop == .requeue ? Agent.stopDeadline : nil)
    }
}

struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev", abstract: "Run a master and one local agent in one process: the zero-config first run.")
    @Option(help: "Address to listen on, HOST:PORT.")
    var listen: String = "127.0.0.1:8420"
    @Option(help: "Data directory (default: a new temporary one).")
    var data: String?
    @Option(help: "Admin token (default: a random one, printed).")
    var adminToken: String?
    @OptionGroup var agent: AgentOptions
    @OptionGroup var log: LogOptions

    func run() async throws {
        let data = self.data ?? NSTemporaryDirectory() + "paddock-dev-\(ProcessInfo.processInfo.processIdentifier)"
        let join = randomToken()
        let admin = adminToken ?? randomToken()
        let logger = log.logger("paddock.dev")
        let master = Master(
            config: try MasterOptions.config(listen: listen, leaseTimeout: "30s", joinToken: join, adminToken: admin),
            store: try MasterOptions.openStore(data: data))
        var agentOptions = agent
        if agentOptions.name == nil { agentOptions.name = "dev-agent" }
        guard !listen.hasSuffix(":0"), let url = URL(string: "http://\(listen)") else {
            throw ValidationError("paddock dev needs a fixed --listen HOST:PORT")
        }
        let config = try agentOptions.config(master: url, joinToken: join, defaultWorkDir: data + "/agent")
        // One group: master first, agent last, so on SIGTERM the agent winds down while the master still answers.
        let services = try await master.services(logger: logger) { url in
            say("""
                paddock dev: master on \(url), data in \(data)
                  admin token: \(admin)
                  join token:  \(join)
                Try:
                  export PADDOCK_MASTER=\(url) PADDOCK_TOKEN=\(admin)
                  paddock submit examples/hello.yaml && paddock jobs
                """)
        }
        try await runServices(services + (try Agent(config: config).services(logger: logger)), logger: logger)
    }
}
