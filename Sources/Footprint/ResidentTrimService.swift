import ServiceLifecycle

/// A long-running process's `ResidentTrim`, asked every `interval` (the master's: start-up's code,
/// schema checks and the first requests' paths are not what it runs once serving).
public struct ResidentTrimService: Service {
    let interval: Duration
    let trim: ResidentTrim

    public init(every interval: Duration, trim: ResidentTrim) {
        self.interval = interval
        self.trim = trim
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            var trim = self.trim
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                trim.releaseIfGrown()
            }
        }
    }
}
