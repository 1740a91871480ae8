import ArgumentParser
import Postern
import PosternApps

/// The `echo` demo app as its own binary: the same listener flags as `postern serve`.
@main
enum Entry {
    static func main() async {
        await Gateway.main(Main.self) { Echo() }
    }
}

struct Main: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "echo")
    @OptionGroup var options: ServeOptions

    func run() async throws {
        try await Gateway.run(Echo(), options: options)
    }
}
