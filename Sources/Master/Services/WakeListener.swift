import Logging
import ServiceLifecycle

/// Delivers the other masters' wake-ups to this master's long-polls (several
/// masters on one database): a task submitted through one master starts on an
/// agent whose claim is held by another at once, not after the claim's `wait`.
public struct WakeListener: Service {
    let relay: any WakeRelay
    let wakes: [WakeSignal]
    let logger: Logger

    public init(relay: any WakeRelay, wakes: [WakeSignal], logger: Logger) {
        self.relay = relay
        self.wakes = wakes
        self.logger = logger
    }

    public func run() async throws {
        let wakes = self.wakes
        try await cancelWhenGracefulShutdown {
            try await relay.listen { channel, work in
                for wake in wakes where wake.channel == channel { await wake.notifyLocally(work) }
            }
        }
    }
}
