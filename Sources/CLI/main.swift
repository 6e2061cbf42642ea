import NIOCore
import NIOPosix

// The master serves its requests where its sockets are: Swift Concurrency's global executor
// becomes NIO's event loops, so that a request's handler, its awaits and its answer no longer
// switch threads between NIO's loops and Swift's own pool (those switches were most of the
// master's CPU per request). Installed before any concurrency code runs, for the master role only:
// the agent measured slower with it (its children's pipes and reapers are threads of their own).
if CommandLine.arguments.dropFirst().first == "master" {
    NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
}
await Paddock.launch()
