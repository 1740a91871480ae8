// Unsafe response headers (from an app or a CGI script) never reach the wire; error pages hide internals.
import Foundation
import Logging
import NIOCore
import Postern
import PosternCore
import PosternEngine
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
        case "/ok": return Response(status: .ok, headers: ["Content-Type": "text/plain", "X-Good": "fine"], body: .init(string: "x"))
        case "/name": return Response(status: .ok, headers: ["Content-Type": "text/plain", "Set-Cookie: evil=1\r\nX": "v"], body: .init(string: "x"))
        default: throw SecretError()
        }
    }
}

extension Hardening {
    @Suite("Response safety")
    struct ResponseSafetyTests {
        /// Runs one request over `listenerProtocol` and returns the raw answer as text.
        static func exchange(_ listenerProtocol: ListenerProtocol, port: Int, path: String) async throws -> String {
            let request = RequestBytes.request(listenerProtocol, path: path)
            let answer = try await HostileSocket.withConnection(port: port) { fd in
                try BlockingClient.sendAll(fd, request)
                return HostileSocket.readUntilClose(fd, timeout: 10) ?? []
            }
            guard listenerProtocol == .fastcgi else { return String(decoding: answer, as: UTF8.self) }
            return String(decoding: RequestBytes.fastCGIStdout(answer) ?? [], as: UTF8.self)
        }

        /// A gateway serving ``UnsafeHeaderApp`` on one loopback listener, for the length of `body`.
        static func withGateway(_ listenerProtocol: ListenerProtocol, debug: Bool, _ body: (Int) async throws -> Void) async throws {
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            let configuration = GatewayConfiguration(application: UnsafeHeaderApp(), debug: debug, logger: logger)
            try await withLiveGateway([loopback(listenerProtocol)], configuration: configuration) { addresses in
                try await body(addresses[0].port!)
            }
        }

        @Test("an app's CR/LF or control character in a header: 500, never forwarded", arguments: RequestBytes.allProtocols)
        func appHeaders(listenerProtocol: ListenerProtocol) async throws {
            try await Self.withGateway(listenerProtocol, debug: false) { port in
                let good = try await Self.exchange(listenerProtocol, port: port, path: "/ok")
                #expect(good.contains("X-Good: fine"), "/ok: \(good.prefix(300))")
                for path in ["/crlf", "/ctl", "/name"] {
                    let text = try await Self.exchange(listenerProtocol, port: port, path: path)
                    #expect(text.contains("500"), "\(path): \(text.prefix(300))")
                    #expect(!text.contains("evil"), "\(path) forwarded: \(text.prefix(300))")
                }
            }
        }

        @Test("error pages hide internals unless --debug", arguments: RequestBytes.allProtocols)
        func errorPages(listenerProtocol: ListenerProtocol) async throws {
            try await Self.withGateway(listenerProtocol, debug: false) { port in
                let text = try await Self.exchange(listenerProtocol, port: port, path: "/throw")
                #expect(text.contains("500"))
                #expect(!text.contains("secret-internal-detail") && !text.contains("Secret.swift"), "internals shown: \(text.prefix(300))")
            }
            try await Self.withGateway(listenerProtocol, debug: true) { port in
                let text = try await Self.exchange(listenerProtocol, port: port, path: "/throw")
                #expect(text.contains("500"))
                #expect(text.contains("secret-internal-detail"), "--debug shows no detail: \(text.prefix(300))")
            }
        }

        @Test("a CGI script's CR or control character in a header (postern serve --cgi-root, every protocol): refused, never forwarded")
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
            let flags = ["--http": ListenerProtocol.http, "--fastcgi": .fastcgi, "--scgi": .scgi, "--uwsgi": .uwsgi].sorted { $0.key < $1.key }
            let server = try await PosternProcess.start("cgi-unsafe", ports: flags.count) { ports in
                ["--cgi-root", root, "--log-level", "critical"] + zip(flags, ports).flatMap { [$0.0.key, "127.0.0.1:\($0.1)"] }
            }
            defer { server.stop() }
            for name in scripts.keys.sorted() {
                for (flag, port) in zip(flags, server.ports) {
                    let listenerProtocol = flag.value
                    let text = try await Self.exchange(listenerProtocol, port: port, path: "/" + name)
                    #expect(text.contains(" 50"), "\(name) over \(listenerProtocol): \(text.prefix(300))")
                    #expect(!text.contains("evil"), "\(name) over \(listenerProtocol) forwarded: \(text.prefix(300))")
                }
            }
            // The same scripts with a clean header are served: the refusals above are about the header.
            try "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nX-Good: fine\\r\\n\\r\\nbody\\n'\n".write(
                toFile: root + "/good.sh", atomically: true, encoding: .utf8)
            chmod(root + "/good.sh", 0o755)
            for (flag, port) in zip(flags, server.ports) {
                let text = try await Self.exchange(flag.value, port: port, path: "/good.sh")
                #expect(text.contains("X-Good: fine") && text.contains("body"), "good.sh over \(flag.value): \(text.prefix(300))")
            }
        }
    }
}
