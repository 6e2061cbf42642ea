import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import PaddockClient
import PaddockProtocol
import PaddockTestSupport

/// Several real masters on one real PostgreSQL behind a real HAProxy (from the
/// shipped packaging/haproxy.cfg), with the `Farm` harness's processes and logs:
/// the farm's `url` is HAProxy's (https: it terminates TLS), as agents and users are given in production.
final class Cluster: @unchecked Sendable {
    // @unchecked: `masterPorts` is set once in `start` before anything else reads it; the
    // rest is immutable or Sendable. The test's own task drives the cluster sequentially.
    let farm: Farm
    let postgres: PostgresServer
    let storeURL: String
    private(set) var masterPorts: [Int] = []
    private(set) var frontend: HAProxyServer?

    init(leaseTimeout: String) async throws {
        guard PostgresServer.isAvailable else { throw FarmError(PostgresServer.unavailableReason) }
        guard HAProxyServer.isAvailable else { throw FarmError(HAProxyServer.unavailableReason) }
        farm = try Farm(leaseTimeout: leaseTimeout)
        postgres = try await PostgresServer.start()
        storeURL = try await offThePool { [postgres] in try postgres.createDatabase("paddock") }
    }

    deinit {
        frontend?.stop()
        postgres.terminate()
    }

    /// Starts `count` masters on the database (each on its own free port) and HAProxy in front.
    func start(masters count: Int) async throws {
        masterPorts = try (0..<count).map { _ in try freeLoopbackPort() }
        for index in masterPorts.indices { try await startMaster(index) }
        let proxy = try await HAProxyServer.start(masters: masterPorts)
        frontend = proxy
        farm.port = proxy.port
        // Through TLS, as shipped: HAProxy terminates it, the masters behind it speak plain HTTP.
        if proxy.tls { farm.tls = (certificate: "", key: "", caFile: HAProxyServer.caFile) }
        try await eventually("HAProxy answers /healthz", timeout: 20) {
            (try? await farm.admin.raw("GET", "/healthz")) != nil
        }
    }

    func masterName(_ index: Int) -> String { "master\(index + 1)" }

    func startMaster(_ index: Int) async throws {
        try farm.launch(masterName(index), [
            "master", "--listen", "127.0.0.1:\(masterPorts[index])", "--store", storeURL,
            "--join-token", Farm.join, "--admin-token", Farm.admin, "--lease-timeout", farm.leaseTimeout,
            "--trusted-proxy", "127.0.0.1"])
        let client = admin(index)
        try await eventually("\(masterName(index)) answers /healthz", timeout: 30) {
            (try? await client.raw("GET", "/healthz")) != nil
        }
    }

    /// A client of one master directly (not through the frontend).
    func admin(_ index: Int) -> MasterClient {
        MasterClient(baseURL: URL(string: masterURL(index))!, token: Farm.admin)
    }

    func masterURL(_ index: Int) -> String { "http://127.0.0.1:\(masterPorts[index])" }

    /// An agent that talks to one master directly, bypassing the frontend.
    func startAgent(_ name: String, on index: Int, _ extra: [String]) throws {
        try farm.launch(name, ["agent", "--master", masterURL(index), "--join-token", Farm.join, "--name", name,
                               "--work-dir", farm.dir + "/" + name] + extra)
    }

    /// GET `path` on one master: its HTTP status and body.
    func get(_ index: Int, _ path: String) async -> (status: Int, body: String) {
        var request = URLRequest(url: URL(string: masterURL(index) + path)!)
        request.setValue("Bearer \(Farm.admin)", forHTTPHeaderField: "Authorization")
        request.timeoutInterval = 10
        guard let (data, response) = try? await URLSession.shared.data(for: request),
              let http = response as? HTTPURLResponse else { return (0, "") }
        return (http.statusCode, String(decoding: data, as: UTF8.self))
    }
}

/// Runs `call` again while the frontend or a master answers 502/503/504 (no master available,
/// database unreachable): such an answer means nothing was done, and an agent would retry too.
func retryingUnavailable<T>(_ what: String, timeout: Double = 60, _ call: () async throws -> T) async throws -> T {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        do {
            return try await call()
        } catch let error as ClientError where [502, 503, 504].contains(error.status ?? 0) && Date() < deadline {
            try await Task.sleep(for: .milliseconds(250))
        }
    }
}
