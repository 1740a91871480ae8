import ArgumentParser
import Postern
import PosternApps

/// The `environ` demo app as its own binary: the same listener flags as `postern serve`.
@main
enum Entry {
    static func main() async {
        await Gateway.main(Main.self) { EnvironDump() }
    }
}

struct Main: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "environ")
    @OptionGroup var options: ServeOptions

    func run() async throws {
        try await Gateway.run(EnvironDump(), options: options)
    }
}
