// Socket safety from the command line: 0660 unix sockets, --allow and FCGI_WEB_SERVER_ADDRS on every protocol, loopback default.
import Foundation
import NIOCore
import Postern
import PosternCore
import PosternTestSupport
import Testing

extension Hardening {
    @Suite("Socket safety through `postern serve`")
    struct SocketSafetyTests {
        static let flags = [("--http", ListenerProtocol.http), ("--fastcgi", .fastcgi), ("--scgi", .scgi), ("--uwsgi", .uwsgi)]

        @Test("--allow and FCGI_WEB_SERVER_ADDRS reach every protocol's listener")
        func allowListOnEveryListener() throws {
            let options = try ServeOptions.parse(Self.flags.flatMap { [$0.0, "127.0.0.1:1"] } + ["--allow", "10.0.0.0/8"])
            let specs = try options.listenerSpecs(environment: ["FCGI_WEB_SERVER_ADDRS": "192.0.2.7"])
            #expect(Set(specs.map(\.listenerProtocol)) == [.http, .fastcgi, .scgi, .uwsgi])
            for spec in specs {
                #expect(spec.allow.allows(try SocketAddress(ipAddress: "10.1.2.3", port: 1)), "\(spec)")
                #expect(spec.allow.allows(try SocketAddress(ipAddress: "192.0.2.7", port: 1)), "\(spec)")
                #expect(!spec.allow.allows(try SocketAddress(ipAddress: "127.0.0.1", port: 1)), "\(spec) admits loopback")
                #expect(spec.socketMode == 0o660, "\(spec)")
            }
        }

        @Test("with no listener flag the development listener is loopback only")
        func loopbackDefault() {
            #expect(LaunchMode.detect(listeners: [], environment: [:], fd0IsListening: { false }) == .developmentHTTP)
            #expect(LaunchMode.defaultHTTPAddress == .tcp(host: "127.0.0.1", port: 8080))
        }

        @Test(
            "live: every protocol refuses a peer outside --allow, then FCGI_WEB_SERVER_ADDRS, and serves one inside",
            arguments: ["--allow", "FCGI_WEB_SERVER_ADDRS"])
        func liveRefusal(source: String) async throws {
            // 127.0.0.1 is outside the list, 127.0.0.2 (loopback too) inside it.
            var environment = ProcessInfo.processInfo.environment
            var allow: [String] = []
            if source == "--allow" {
                allow = ["--allow", "192.0.2.1", "--allow", "127.0.0.2"]
            } else {
                environment["FCGI_WEB_SERVER_ADDRS"] = "192.0.2.1,127.0.0.2"
            }
            let server = try await PosternProcess.start("allow", ports: Self.flags.count, environment: environment) { ports in
                ["--app", "hello", "--log-level", "critical"] + allow + zip(Self.flags, ports).flatMap { [$0.0.0, "127.0.0.1:\($0.1)"] }
            }
            defer { server.stop() }
            for (flag, port) in zip(Self.flags, server.ports) {
                let request = RequestBytes.request(flag.1, path: "/")
                let refused = try await HostileSocket.withConnection(port: port) { fd in
                    try? BlockingClient.sendAll(fd, request)
                    return HostileSocket.readUntilClose(fd, timeout: 10)
                }
                #expect(refused == [], "\(flag.1) answered a refused peer: \(String(decoding: refused ?? [], as: UTF8.self).prefix(200))")
                let allowed = try await HostileSocket.withConnection(port: port, from: "127.0.0.2") { fd in
                    try BlockingClient.sendAll(fd, request)
                    return HostileSocket.readUntilClose(fd, timeout: 10)
                }
                #expect(
                    (allowed ?? []).containsText("Hello, World!"),
                    "\(flag.1) did not serve an allowed peer: \(String(decoding: allowed ?? [], as: UTF8.self).prefix(200))")
            }
        }

        @Test("live: unix sockets of every protocol are created 0660 without --socket-mode")
        func unixSocketModes() async throws {
            let directory = try Paths.makeTestDirectory("modes")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var arguments = ["serve", "--app", "hello", "--log-level", "critical"]
            for flag in Self.flags { arguments += [flag.0, "unix:\(directory)/\(flag.1).sock"] }
            let process = try ManagedProcess(name: "postern", executable: Paths.binary("postern"), arguments: arguments, directory: directory)
            defer { process.stop() }
            for flag in Self.flags {
                let path = "\(directory)/\(flag.1).sock"
                try await Wait.forSocket(path)
                // The mode is set just after bind (GatewayServer): allow that moment to pass.
                var info = stat()
                for _ in 0..<50 {
                    guard stat(path, &info) == 0, info.st_mode & 0o777 != 0o660 else { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(info.st_mode & 0o777 == 0o660, "\(path) has mode \(String(info.st_mode & 0o777, radix: 8))")
            }
        }
    }
}
