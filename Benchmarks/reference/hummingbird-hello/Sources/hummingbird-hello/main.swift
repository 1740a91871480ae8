// Hummingbird 2's hello on 127.0.0.1:PORT, GET /hello → "Hello, World!\n" (as Postern's hello).
// With a certificate and its key (PEM) after the port: the same over TLS, through
// HummingbirdTLS (swift-nio-ssl, as Postern's --https), for the bench's `hummingbird-tls` mode.
import Hummingbird
import HummingbirdTLS

let arguments = Array(CommandLine.arguments.dropFirst())
let port = arguments.first.flatMap { Int($0) } ?? 8080
let router = Router()
router.get("hello") { _, _ in "Hello, World!\n" }
let configuration = ApplicationConfiguration(address: .hostname("127.0.0.1", port: port))
if arguments.count >= 3 {
    let tls = TLSConfiguration.makeServerConfiguration(
        certificateChain: try NIOSSLCertificate.fromPEMFile(arguments[1]).map { .certificate($0) },
        privateKey: .privateKey(try NIOSSLPrivateKey(file: arguments[2], format: .pem)))
    let app = Application(router: router, server: try .tls(.http1(), tlsConfiguration: tls), configuration: configuration)
    try await app.runService()
} else {
    let app = Application(router: router, configuration: configuration)
    try await app.runService()
}
