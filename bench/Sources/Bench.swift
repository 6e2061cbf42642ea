import ArgumentParser

@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "paddock-bench", abstract: "Paddock's benchmark harness.")
    func run() async throws {}
}
