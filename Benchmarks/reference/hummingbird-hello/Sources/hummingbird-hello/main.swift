// Hummingbird 2's hello on 127.0.0.1:PORT, GET /hello → "Hello, World!\n" (as Postern's hello).
import Hummingbird

let port = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 8080
let router = Router()
router.get("hello") { _, _ in "Hello, World!\n" }
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
try await app.runService()
