import Hummingbird
import PaddockProtocol

/// Who is calling, as established by `AuthMiddleware`.
public enum Caller: Sendable, Equatable {
    case anonymous
    /// Holds the join token: may only enroll.
    case joiner
    case admin
    case agent(AgentIdentity)
}

/// The request context of every master route: the caller, set by the auth middleware.
public struct MasterContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var caller: Caller = .anonymous

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// Bodies are collected by the routes themselves with per-route bounds (`BodyLimit`).
    public var maxUploadSize: Int { Limits.jobSpecBytes }
}

/// Per-route bounds on request bodies (ARCHITECTURE §8).
enum BodyLimit {
    static let jobSpec = Limits.jobSpecBytes
    static let logChunk = Limits.logChunkBytes
    static let small = 256 * 1024
}
