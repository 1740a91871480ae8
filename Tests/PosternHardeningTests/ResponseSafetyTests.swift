// Unsafe response headers (from an app or a CGI script) never reach the wire; error pages hide internals.
import Foundation
import Logging
import NIOCore
import Postern
import PosternCore
import PosternTestSupport
import Testing

/// An app whose response carries a header value with CR/LF or a control character, or that throws.
struct UnsafeHeaderApp: Application {
    struct SecretError: Error, CustomStringConvertible {
        var description: String { "secret-internal-detail-42 at /srv/app/Secret.swift:7" }
    }

    func respond(to environ: Environ) async throws -> Response {
        switch environ["PATH_INFO"] ?? "" {
        case "/crlf": return Response(status: .ok, headers: ["Content-Type": "text/plain", "X-Bad": "a\r\nSet-Cookie: evil=1"], body: .init(string: "x"))
        case "/ctl": return Response(status: .ok, headers: ["Content-Type": "text/plain", "X-Bad": "a\u{01}b evil=1"], body: .init(string: "x"))
        case "/name": return Response(status: .ok, headers: ["Content-Type": "text/plain", "Set-Cookie: evil=1\r\nX": "v"], body: .init(string: "x"))
        default: throw SecretError()
        }
    }
}

@Suite("Response safety", .serialized)
struct ResponseSafetyTests {
    /// Runs one request over `gatewayProtocol` and returns the raw answer as text.
    static func exchange(_ gatewayProtocol: GatewayProtocol, port: Int, path: String) async throws -> String {
        let request = gatewayProtocol == .http
            ? Array("GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)
            : RequestBytes.head(gatewayProtocol, path: path, contentLength: 0) + RequestBytes.body(gatewayProtocol, [], end: true)
        let answer = try await HostileSocket.withConnection(port: port) { fd in
            try BlockingClient.sendAll(fd, request)
            return HostileSocket.readUntilClose(fd, timeout: 10) ?? []
        }
        guard gatewayProtocol == .fastcgi else { return String(decoding: answer, as: UTF8.self) }
        return String(decoding: RequestBytes.fastCGIStdout(answer) ?? [], as: UTF8.self)
    }

    /// A gateway with `configuration` on one loopback listener, for the length of `body`.
    static func withGateway(_ gatewayProtocol: GatewayProtocol, debug: Bool, _ body: (Int) async throws -> Void) async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let configuration = GatewayConfiguration(application: UnsafeHeaderApp(), debug: debug, logger: logger)
        let (ready, continuation) = AsyncStream<[SocketAddress?]>.makeStream()
        let server = GatewayServer(listeners: [loopback(gatewayProtocol)], configuration: configuration) { continuation.yield($0); continuation.finish() }
        let task = Task { try await server.run() }
        defer { task.cancel() }
        var iterator = ready.makeAsyncIterator()
        guard let port = await iterator.next()?.first??.port else { throw TestFailure("no listener") }
        try await body(port)
        task.cancel()
        _ = await task.result
    }

    @Test("an app's CR/LF or control character in a header: 500, never forwarded", arguments: RequestBytes.allProtocols)
    func appHeaders(gatewayProtocol: GatewayProtocol) async throws {
        try await Self.withGateway(gatewayProtocol, debug: false) { port in
            for path in ["/crlf", "/ctl", "/name"] {
                let text = try await Self.exchange(gatewayProtocol, port: port, path: path)
                #expect(text.contains("500"), "\(path): \(text.prefix(300))")
                #expect(!text.contains("evil"), "\(path) forwarded: \(text.prefix(300))")
            }
        }
    }

    @Test("error pages hide internals unless --debug", arguments: RequestBytes.allProtocols)
    func errorPages(gatewayProtocol: GatewayProtocol) async throws {
        try await Self.withGateway(gatewayProtocol, debug: false) { port in
            let text = try await Self.exchange(gatewayProtocol, port: port, path: "/throw")
            #expect(text.contains("500"))
            #expect(!text.contains("secret-internal-detail") && !text.contains("Secret.swift"), "internals shown: \(text.prefix(300))")
        }
        try await Self.withGateway(gatewayProtocol, debug: true) { port in
            let text = try await Self.exchange(gatewayProtocol, port: port, path: "/throw")
            #expect(text.contains("500"))
            #expect(text.contains("secret-internal-detail"), "--debug shows no detail: \(text.prefix(300))")
        }
    }

    @Test("a CGI script's CR or control character in a header (postern serve --cgi-root): refused, never forwarded")
    func cgiScriptHeaders() async throws {
        let root = try Paths.makeTestDirectory("cgi-unsafe")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let scripts = [
            "cr.sh": #"printf 'Content-Type: text/plain\r\nX-Bad: a\rSet-Cookie: evil=1\r\n\r\nbody\n'"#,
            "ctl.sh": #"printf 'Content-Type: text/plain\r\nX-Bad: a\001evil=1\r\n\r\nbody\n'"#,
            "name.sh": #"printf 'Content-Type: text/plain\r\nX Bad evil=1: v\r\n\r\nbody\n'"#,
        ]
        for (name, line) in scripts {
            let path = root + "/" + name
            try "#!/bin/sh\n\(line)\n".write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o755)
        }
        let httpPort = try Ports.free()
        let scgiPort = try Ports.free()
        let server = try await PosternProcess.start("cgi-unsafe", arguments: [
            "--cgi-root", root, "--http", "127.0.0.1:\(httpPort)", "--scgi", "127.0.0.1:\(scgiPort)", "--log-level", "critical",
        ], waitFor: httpPort)
        defer { server.stop() }
        try await Wait.forPort(scgiPort)
        for name in scripts.keys.sorted() {
            for (gatewayProtocol, port) in [(GatewayProtocol.http, httpPort), (.scgi, scgiPort)] {
                let text = try await Self.exchange(gatewayProtocol, port: port, path: "/" + name)
                #expect(text.contains(" 50"), "\(name) over \(gatewayProtocol): \(text.prefix(300))")
                #expect(!text.contains("evil"), "\(name) over \(gatewayProtocol) forwarded: \(text.prefix(300))")
            }
        }
    }
}
