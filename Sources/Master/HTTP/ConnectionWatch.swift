import NIOCore
import Synchronization

/// Notes when the client closed its side of the connection. Hummingbird allows half-closed
/// connections, so a connection stays active after its client is gone (killed: its kernel closed the
/// socket) until the request held on it is answered; a held long-poll must not keep such an agent
/// online meanwhile (`HeldPolls`).
final class ConnectionWatch: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny
    private let closed = Atomic(false)

    /// The client closed its side (or the connection is gone).
    var inputClosed: Bool { closed.load(ordering: .relaxed) }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { closed.store(true, ordering: .relaxed) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed.store(true, ordering: .relaxed)
        context.fireChannelInactive()
    }
}
