import Foundation
import Hummingbird
import PaddockProtocol

extension MasterAPI {
    func submitJob(_ request: Request, _ context: MasterContext) async throws -> Response {
        let user = try context.require(.submit)
        // A Paddock job, or an OpenJD template converted into one (MasterAPI+OpenJD.swift).
        let key = try Self.idempotencyKey(request)
        let (submission, conversionWarnings, bodyHash) = try await Self.jobSubmission(from: request, hashingBody: key != nil)
        let (owner, ownerWarnings) = Self.owner(of: submission.submission, by: user)
        let outcome = try await store.submit(submission, owner: owner, now: store.clock.now(),
                                             idempotency: key.flatMap { key in bodyHash.map { SubmissionKey(key: key, bodyHash: $0) } },
                                             handoff: heldClaims)
        var job = outcome.job
        // The held claims this job's claimable tasks fit, one per task at most, beyond those it was
        // handed to in its transaction (a replay queued nothing).
        if !outcome.replayed && !outcome.readied.isEmpty { await wake.notify(outcome.readied) }
        // A new job's queued tasks are known from its insert, and nothing blocklists an agent for it
        // yet; a replay's are read.
        let placement = outcome.replayed ? try await placementWarnings(job.id)
            : try await placementWarnings(job.id, queued: outcome.queued, blocked: [])
        job.warnings = conversionWarnings + ownerWarnings + placement
        let minimal = Self.prefersMinimal(request)
        var response = minimal ? try Self.json(JobCreated(job), status: .created) : try Self.json(job, status: .created)
        // Literal, valid header names: the failable init cannot fail here.
        if minimal { response.headers[.init("Preference-Applied")!] = "return=minimal" }
        // The same answer as the first time, said to be a replay.
        if outcome.replayed { response.headers[.init("Idempotent-Replayed")!] = "true" }
        return response
    }

    /// Whether the request's `Prefer` headers ask for `return=minimal` (RFC 7240: preferences are
    /// comma-separated, their names and these values case-insensitive, a value may be quoted; one
    /// not understood is ignored).
    static func prefersMinimal(_ request: Request) -> Bool {
        request.headers.contains { field in
            field.name.canonicalName == "prefer" && field.value.split(separator: ",").contains { preference in
                // A preference's own parameters (after `;`) do not matter here.
                let parts = (preference.split(separator: ";").first ?? "").split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { return false }
                let name = parts[0].trimmingCharacters(in: .whitespaces).lowercased()
                let value = parts[1].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"")).lowercased()
                return name == "return" && value == "minimal"
            }
        }
    }

    /// Whose job this is. A submit token's jobs are its name's, whatever the submission says; an
    /// admin may submit for anyone (the bootstrap admin token's default owner is `admin`, a named
    /// admin token's its name).
    static func owner(of submission: JobSubmission, by user: User) -> (String, [String]) {
        if user.role == .admin { return (submission.owner ?? user.name, []) }
        guard let asked = submission.owner, asked != user.name else { return (user.name, []) }
        return (user.name, ["owner '\(asked.prefix(80))' was ignored: jobs submitted with a submit token belong to "
                            + "the token's name (\(user.name))"])
    }

    /// `Idempotency-Key`: at most 255 visible ASCII characters (a UUID is the usual choice).
    static func idempotencyKey(_ request: Request) throws -> String? {
        guard let value = request.headers.first(where: { $0.name.canonicalName == "idempotency-key" })?.value else { return nil }
        guard !value.isEmpty, value.count <= 255, value.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0.asciiValue.map { $0 >= 0x21 && $0 < 0x7f } == true }) else {
            throw PaddockError.invalid("Idempotency-Key is 1 to 255 visible ASCII characters", field: "Idempotency-Key")
        }
        return value
    }

    func listJobs(_ request: Request, _ context: MasterContext) async throws -> Response {
        try context.require(.read)
        var filter = JobFilter()
        if let state = Self.query(request, "state") {
            guard let value = JobState(rawValue: state) else {
                throw PaddockError.invalid("state is one of \(JobState.allCases.map(\.rawValue).joined(separator: ", "))", field: "state")
            }
            filter.state = value
        }
        filter.owner = Self.query(request, "owner")
        if let label = Self.query(request, "label") {
            // `KEY=` filters on an empty value (a label's value may be empty); the key may not be.
            let parts = label.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty else { throw PaddockError.invalid("label is KEY=VALUE", field: "label") }
            filter.label = (parts[0], parts[1])
        }
        return try Self.json(try await store.jobs(filter, page: try Self.page(request)))
    }

    func getJob(_ request: Request, _ context: MasterContext) async throws -> Response {
        try context.require(.read)
        var job = try await store.job(try Self.id(JobID.self, context, what: "job"))
        job.blocklist = try await store.blocklist(job: job.id, threshold: config.blocklistAfter)
        job.warnings = try await placementWarnings(job.id)
        return try Self.json(job)
    }

    /// Queued tasks that no enrolled (not disabled) agent could ever run, or that only blocklisted
    /// agents could: said, not left waiting silently.
    /// `queued` and `blocked`, where the caller knows them, spare reading them.
    func placementWarnings(_ job: JobID, queued known: [(TaskRequirements, Int)]? = nil,
                           blocked knownBlocked: Set<AgentID>? = nil) async throws -> [String] {
        var queued = known ?? []
        if known == nil { queued = try await store.queuedRequirements(job: job) }
        guard !queued.isEmpty else { return [] }
        var blocked = knownBlocked ?? []
        if knownBlocked == nil { blocked = Set(try await store.blocklist(job: job, threshold: config.blocklistAfter).map(\.agent)) }
        // The agents as kept a moment ago; a warning only as a fresh read has them.
        let warnings = Self.placementWarnings(queued, agents: try await capacities.capacities(store, fresh: false), blocked: blocked)
        guard !warnings.isEmpty else { return [] }
        return Self.placementWarnings(queued, agents: try await capacities.capacities(store, fresh: true), blocked: blocked)
    }

    static func placementWarnings(_ queued: [(TaskRequirements, Int)], agents: [AgentCapacity], blocked: Set<AgentID>) -> [String] {
        queued.compactMap { requirements, count in
            let fitting = agents.filter { ClaimPolicy.canEverRun(requirements, capacity: $0.total, tags: $0.tags) }
            let tags = requirements.tags.isEmpty ? "" : ", tags \(requirements.tags.joined(separator: ","))"
            if fitting.isEmpty {
                return "\(count) queued task(s) fit no agent (need \(requirements.resources.summary)\(tags))"
            }
            if fitting.allSatisfy({ blocked.contains($0.id) }) {
                return "\(count) queued task(s) wait: every agent that fits them is blocklisted for this job "
                    + "(\(fitting.map(\.name).joined(separator: ", "))); clear the blocklist or add agents"
            }
            return nil
        }
    }
}
