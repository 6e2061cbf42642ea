import Foundation

/// Runs `argv` (its first word an executable's path) with exactly `environment`: its exit status, its
/// standard output, and its standard error (merged into the output with `mergingErrors`). For commands
/// that print far less than a pipe holds: the two pipes are read to their ends in turn, then the
/// process is waited for.
public func runCommand(_ argv: [String], environment: [String: String], cwd: URL? = nil,
                       mergingErrors: Bool = false) throws -> (status: Int32, output: String, errors: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: argv[0])
    process.arguments = Array(argv.dropFirst())
    process.environment = environment
    if let cwd { process.currentDirectoryURL = cwd }
    let output = Pipe(), errors = Pipe()
    process.standardOutput = output
    process.standardError = mergingErrors ? output : errors
    try process.run()
    let error = mergingErrors ? Data() : errors.fileHandleForReading.readDataToEndOfFile()
    let out = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: error, as: UTF8.self))
}
