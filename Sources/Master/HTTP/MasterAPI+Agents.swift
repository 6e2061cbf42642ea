import Foundation
import Hummingbird
import PaddockProtocol

extension MasterAPI {
    func enrollAgent(_ request: Request, _ context: MasterContext) async throws -> Response {
        let joinToken: TokenID?
        switch context.caller {
        case .joiner(let token): joinToken = token
        case .user(let user) where user.role == .admin: joinToken = nil
        default: throw PaddockError.needsRole(.join, has: context.roleName)
        }
        let enroll = try await Self.decode(EnrollRequest.self, from: request, limit: BodyLimit.small)
        let credential = Self.newCredential()
        let id: AgentID
        do {
            id = try await store.enroll(enroll, credential: credential, joinToken: joinToken, now: store.clock.now())
        } catch let error as PaddockError where error.status == 409 || error.status == 401 {
            context.logger.warning("enrollment as \(enroll.name.prefix(80)) from \(context.clientName) refused: \(error.code)")
            throw error
        }
        addresses.record(id, context.client)
        context.logger.info("agent \(enroll.name.prefix(80)) enrolled as \(id) from \(context.clientName)")
        await wake.notifyAll()
        return try Self.json(EnrollResponse(id: id, credential: credential, leaseTimeout: config.leaseTimeout,
                                            heartbeatInterval: config.heartbeatInterval), status: .created)
    }

    /// 256 random bits from the system's CSPRNG (getrandom on Linux).
    static func newCredential() -> String { SecretHash.newSecret(prefix: AuthMiddleware.credentialPrefix) }

    func listAgents(_ request: Request, _ context: MasterContext) async throws -> Response {
        try context.require(.read)
        let agents = try await store.agents().map(addresses.annotate)
        return try Self.json(Page(items: agents, next: nil))
    }

    func getAgent(_ request: Request, _ context: MasterContext) async throws -> Response {
        let id = try Self.id(AgentID.self, context, what: "agent")
        if case .agent = context.caller { _ = try context.requireAgent(id) } else { try context.require(.read) }
        return try Self.json(addresses.annotate(try await store.agent(id)))
    }

    func heartbeat(_ request: Request, _ context: MasterContext) async throws -> Response {
        let id = try Self.id(AgentID.self, context, what: "agent")
        _ = try context.requireAgent(id)
        let beat = try await Self.decode(HeartbeatRequest.self, from: request, limit: BodyLimit.small)
        let (state, lost, released) = try await store.heartbeat(agent: id, beat: beat, leaseUntil: leaseUntil, now: store.clock.now())
        addresses.record(id, context.client)
        if beat.authoritative || released > 0 {
            await wake.notifyAll()
            await changes.notifyAll()
        }
        return try Self.json(HeartbeatResponse(state: state, lost: lost, leaseTimeout: config.leaseTimeout,
                                               heartbeatInterval: config.heartbeatInterval))
    }

    /// Leases fitting tasks at once; with nothing to hand out, holds the request
    /// (up to `wait` seconds) and tries again whenever work may have appeared.
    func claim(_ request: Request, _ context: MasterContext) async throws -> Response {
        let id = try Self.id(AgentID.self, context, what: "agent")
        _ = try context.requireAgent(id)
        let claim = try await Self.decode(ClaimRequest.self, from: request, limit: BodyLimit.small)
        addresses.record(id, context.client)
        // One held claim long-poll per agent, as with the exchange: a newer claim or exchange ends it.
        let mine = await wake.supersede(id.rawValue)
        let deadline = ContinuousClock.now + .milliseconds(Int(claim.wait * 1000))
        let ticket = claim.wait > 0 ? await heldPolls.hold(id, on: context.channel) : nil
        defer { if let ticket { heldPolls.release(ticket) } }
        while true {
            // Superseded: answers without claiming (its connection may be the dead one).
            if await wake.supersessions(id.rawValue) != mine {
                stats.recordClaim()
                return try Self.json(ClaimResponse(leases: []))
            }
            let generation = await wake.generation
            let now = store.clock.now()
            let outcome = try await store.claim(ClaimOrder(
                agent: id, slots: claim.slots, reportedFree: claim.free, prefetch: claim.prefetch,
                blocklistAfter: config.blocklistAfter, leaseUntil: now.addingTimeInterval(config.leaseTimeout), now: now))
            if outcome.stolen > 0 {
                stats.recordSteals(outcome.stolen)
                await commandWake.notifyAll()  // the victims must hear to drop them
            }
            let left = deadline - ContinuousClock.now
            let closing = await wake.isClosed
            if !outcome.leases.isEmpty || left <= .zero || closing {
                stats.recordClaim()
                return try Self.json(ClaimResponse(leases: outcome.leases))
            }
            await wake.wait(since: generation, timeout: left, key: id.rawValue, keySeen: mine, interest: .work(outcome.room))
        }
    }

    /// The agent exchange: its reports, then its claim, in one transaction, and its talkback commands.
    /// With nothing to hand out it holds the request (up to the longer of the claim's and the
    /// talkback's `wait`), claiming again whenever work may have appeared and reading the commands
    /// again whenever one was posted. A newer exchange of the same agent supersedes a held one, which
    /// then answers with nothing more: so an agent may report while its long-poll waits, and no lease
    /// is lost to it.
    func exchange(_ request: Request, _ context: MasterContext) async throws -> Response {
        let id = try Self.id(AgentID.self, context, what: "agent")
        _ = try context.requireAgent(id)
        let exchange = try await Self.decode(ExchangeRequest.self, from: request, limit: BodyLimit.exchange)
        addresses.record(id, context.client)
        let started = ContinuousClock.now
        var held = false
        let mine = await wake.supersede(id.rawValue)
        let deadline = ContinuousClock.now + .milliseconds(Int(exchange.wait * 1000))
        let ticket = exchange.wait > 0 ? await heldPolls.hold(id, on: context.channel) : nil
        defer { if let ticket { heldPolls.release(ticket) } }
        var reports = exchange
        reports.claim = nil
        var visible = !(exchange.started.isEmpty && exchange.progress.isEmpty)
        var response = ExchangeResponse()
        /// The commands signal's generation when the commands were last read (nil: not yet).
        var commandsRead: UInt64?
        /// What the held exchange waits for on the claims signal: work its room takes, or (with no
        /// claim) only its supersession.
        var interest = WakeInterest.nothing
        while true {
            let generation = await wake.generation
            let commandGeneration = await commandWake.generation
            let now = store.clock.now()
            let order = exchange.claim.map { claim in
                var order = ClaimOrder(agent: id, slots: claim.slots, reportedFree: claim.free, prefetch: claim.prefetch,
                                       blocklistAfter: config.blocklistAfter,
                                       leaseUntil: now.addingTimeInterval(config.leaseTimeout), now: now)
                order.capacity = claim.capacity
                order.startAtOnce = true
                order.exchange = exchange.number
                return order
            }
            if order == nil, let talkback = exchange.talkback, let read = commandsRead {
                // A held talkback poll, woken: only a posted command can change its answer.
                if read != commandGeneration {
                    let commands = try await store.commands(for: id, after: talkback.after, now: now)
                    response.talkback = CommandBatch(commands: commands, last: commands.last?.seq ?? talkback.after)
                }
            } else {
                interest = try await exchangeRound(id, reports, order, context, now: now, visible: visible, into: &response)
            }
            commandsRead = commandGeneration
            reports = ExchangeRequest(talkback: exchange.talkback)  // applied: a later round only claims and reads
            visible = false
            let left = deadline - ContinuousClock.now
            let closing = await wake.isClosed
            let commands = !(response.talkback?.commands.isEmpty ?? true)
            if !response.leases.isEmpty || commands || left <= .zero || closing { break }
            held = true
            // Waiting for work: a submission it fits may lease to it in its own transaction (`HeldClaims`).
            // Only with the agent's capacity known: the master then counts its busy slots itself, so
            // a claim made for this hold while the agent's next exchange also claims gives it no more.
            var handoff: Handoff?
            if let order, order.capacity != nil, case .work(let room) = interest, room.fits != nil {
                handoff = heldClaims.hold(order, leaseTimeout: config.leaseTimeout, room: room,
                                          credential: context.uncheckedCredential)
            }
            await wake.wait(since: generation, timeout: left, key: id.rawValue, keySeen: mine, interest: interest,
                            or: exchange.talkback == nil ? nil : (commandWake, commandGeneration), handoff: handoff)
            // Taken by a submission: its leases come with its commit (none if it failed or found nothing).
            if let handoff, !heldClaims.withdraw(handoff) {
                let leases = await handoff.leases
                if !leases.isEmpty {
                    response.leases = leases
                    stats.recordHandoff()
                    await changes.notifyAll()
                    break
                }
            }
            if await wake.supersessions(id.rawValue) != mine { break }
        }
        if exchange.claim != nil { stats.recordClaim() }
        // Counted as every request; timed unless it held a long-poll (its wait is not the master's speed).
        stats.recordRequest(held ? nil : ContinuousClock.now - started)
        return try Self.json(response)
    }

    /// One round of an exchange: its reports (the first round only), its claim and its commands, in
    /// one transaction; then the wake-ups of what it changed. Answers what a hold after it waits for:
    /// work that fits what the agent could still take, or with no claim nothing.
    private func exchangeRound(_ id: AgentID, _ reports: ExchangeRequest, _ order: ClaimOrder?, _ context: MasterContext,
                               now: Date, visible: Bool, into response: inout ExchangeResponse) async throws -> WakeInterest {
        let outcome: ExchangeOutcome
        do {
            outcome = try await store.exchange(agent: id, reports, claim: order, credential: context.uncheckedCredential,
                                               leaseUntil: now.addingTimeInterval(config.leaseTimeout), now: now)
        } catch let error as PaddockError where error.status == 401 {
            if let hash = context.uncheckedCredential { credentials.forget(hash: hash) }
            throw error
        }
        response.refused += outcome.response.refused
        response.logs += outcome.response.logs
        response.leases = outcome.response.leases
        response.talkback = outcome.response.talkback
        if outcome.stolen > 0 {
            stats.recordSteals(outcome.stolen)
            await commandWake.notifyAll()  // the victims must hear to drop them
        }
        // Tasks queued again or unblocked: the held claims they fit may take them. (Room freed on this
        // agent is its own: its claim in this exchange took what fits.) Followers learn a run ended.
        await wake.notify(outcome.readied)
        if outcome.finished || outcome.logged { await logWake.notifyAll() }
        // What a dashboard shows moved: runs started, ended, progressed or said something.
        if outcome.finished || !outcome.response.leases.isEmpty || visible { await changes.notifyAll() }
        return order == nil ? .nothing : .work(outcome.room)
    }
}
