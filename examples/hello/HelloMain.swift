import ArgumentParser
import Postern
import PosternApps

/// The `hello` demo app as its own binary: the same listener flags as `postern serve`.
@main
enum Entry {
    static func main() async {
        await Gateway.main(Main.self) { Hello() }
    }
}

struct Main: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "hello")
    @OptionGroup var options: ServeOptions

    func run() async throws {
        try await Gateway.run(Hello(), options: options)
    }
}
