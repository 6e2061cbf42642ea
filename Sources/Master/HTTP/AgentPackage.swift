import Foundation
import Hummingbird
import NIOCore
import PaddockProtocol

/// The agent package a master serves to new hosts, with the SHA-256 that its build wrote beside it
/// (`NAME.sha256`, in `sha256sum` format). The install script refuses a package with another sum.
public struct AgentPackage: Sendable {
    public let path: String
    public let name: String
    public let sha256: String

    public static func load(_ path: String) throws -> AgentPackage {
        guard FileManager.default.fileExists(atPath: path) else { throw PaddockError.invalid("no agent package at \(path)") }
        guard let sums = FileManager.default.contents(atPath: path + ".sha256"),
              let sum = String(decoding: sums, as: UTF8.self).split(whereSeparator: \.isWhitespace).first,
              sum.count == 64, sum.allSatisfy(\.isHexDigit) else {
            throw PaddockError.invalid("\(path).sha256 is missing or not a SHA-256 (write it with sha256sum)")
        }
        let name = URL(fileURLWithPath: path).lastPathComponent
        guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-+~".contains($0)) }) else {
            throw PaddockError.invalid("the agent package's file name must be plain: \(name)")
        }
        return AgentPackage(path: path, name: name, sha256: String(sum).lowercased())
    }
}

extension MasterAPI {
    /// `curl -fsSL MASTER/install-agent.sh | sudo sh -s -- --join-token T`: the script, with this
    /// master's URL, the package's name and its checksum written in.
    func installAgentScript(_ request: Request, _ context: MasterContext) async throws -> Response {
        guard let package = config.agentPackage else {
            throw PaddockError(status: 404, code: "not_found",
                               message: "this master serves no agent package (start it with --agent-package)")
        }
        let url = Self.installURL(publicURL: config.publicURL, authority: request.head.authority,
                                  fallback: "\(config.host):\(config.port)")
        let script = String(decoding: PackageResources.install_agent_sh, as: UTF8.self)
            .replacingOccurrences(of: "@MASTER_URL@", with: url)
            .replacingOccurrences(of: "@PACKAGE_NAME@", with: package.name)
            .replacingOccurrences(of: "@PACKAGE_SHA256@", with: package.sha256)
        return Response(status: .ok, headers: [.contentType: "text/x-shellscript; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(string: script)))
    }

    /// The master URL written into the install script (which new hosts run as root). The operator's
    /// `--public-url` when given: behind a frontend it is the only trustworthy one. Without it, the
    /// request's Host only when it is a plain `host[:port]`, since it is the caller's own text and
    /// a cache in front could serve the script to others; anything else gets the listen address.
    static func installURL(publicURL: String?, authority: String?, fallback: String) -> String {
        if let publicURL { return publicURL }
        if let authority, (1...255).contains(authority.utf8.count),
           authority.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || ".-:[]".unicodeScalars.contains($0)) }),
           !authority.hasPrefix("-") {
            return "http://\(authority)"
        }
        return "http://\(fallback)"
    }

    /// The package itself, streamed from disk. Only the configured file is ever served: the name in
    /// the path is compared, never used to build a path.
    func agentPackage(_ request: Request, _ context: MasterContext) async throws -> Response {
        guard let package = config.agentPackage, context.parameters.get("name") == package.name,
              let handle = FileHandle(forReadingAtPath: package.path) else {
            throw PaddockError.notFound("package \(context.parameters.get("name")?.prefix(80) ?? "")")
        }
        let body = ResponseBody { writer in
            defer { try? handle.close() }
            while let chunk = try handle.read(upToCount: 256 * 1024), !chunk.isEmpty {
                try await writer.write(ByteBuffer(bytes: chunk))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "application/vnd.debian.binary-package"], body: body)
    }
}
