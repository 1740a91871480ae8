import Foundation
import PosternTestSupport
import Testing

/// The shipped `lighttpd/` configurations, proven against lighttpd on loopback.
@Suite("lighttpd", .serialized)
struct LighttpdTests {
    @Test("mod_fastcgi to a host and port")
    func fastCGITCP() async throws {
        let directory = try Paths.makeTestDirectory("lighttpd-fcgi")
        let backend = try await Backend.serve(app: "demo", protocol: .fastcgi, directory: directory)
        defer { backend.stop() }
        let config = try ShippedConfig.lighttpd("lighttpd/postern-fastcgi-tcp.conf", variables: ["postern_port": "\(backend.port!)"])
        let lighttpd = try await FrontEnd.lighttpd(snippets: [config], directory: directory)
        defer { lighttpd.stop() }
        let environ = try await FrontEndChecks.environ(lighttpd, prefix: "/app")
        #expect(environ["SCRIPT_NAME"] == "/app")
        #expect(environ["PATH_INFO"] == "/some/where x")
        try await FrontEndChecks.echo(lighttpd, target: "/app/echo")
        try await FrontEndChecks.concurrency(lighttpd, target: "/app/hello")
    }

    @Test("mod_fastcgi to a unix socket")
    func fastCGIUnix() async throws {
        let directory = try Paths.makeTestDirectory("lighttpd-unix")
        let socket = directory + "/app.sock"
        let backend = try await Backend(
            arguments: ["serve", "--app", "demo", "--fastcgi", "unix:" + socket, "--log-level", "warning"], socketPath: socket, directory: directory)
        defer { backend.stop() }
        let config = try ShippedConfig.lighttpd("lighttpd/postern-fastcgi-unix.conf", variables: ["postern_socket": "\"\(socket)\""])
        let lighttpd = try await FrontEnd.lighttpd(snippets: [config], directory: directory)
        defer { lighttpd.stop() }
        let environ = try await FrontEndChecks.environ(lighttpd, prefix: "/app-unix")
        #expect(environ["SCRIPT_NAME"] == "/app-unix")
        try await FrontEndChecks.echo(lighttpd, target: "/app-unix/echo")
        try await FrontEndChecks.concurrency(lighttpd, target: "/app-unix/hello")
    }

    @Test("bin-path: lighttpd spawns the app, which finds its socket on fd 0")
    func spawned() async throws {
        let directory = try Paths.makeTestDirectory("lighttpd-spawn")
        let config = try ShippedConfig.lighttpd(
            "lighttpd/postern-fastcgi-spawn.conf",
            variables: [
                "postern_binary": "\"\(Paths.binary("postern"))\"", "postern_spawn_socket": "\"\(directory)/spawn.sock\"",
            ])
        let lighttpd = try await FrontEnd.lighttpd(snippets: [config], directory: directory)
        defer { lighttpd.stop() }
        let environ = try await FrontEndChecks.environ(lighttpd, prefix: "/spawned")
        #expect(environ["gateway.protocol"] == "fastcgi")
        #expect(environ["SCRIPT_NAME"] == "/spawned")
        let spawned = try Processes.commandLines().filter { $0.hasPrefix(Paths.binary("postern")) }
        #expect(spawned.contains { $0 == Paths.binary("postern") }, "\(spawned)")
        try await FrontEndChecks.echo(lighttpd, target: "/spawned/echo")
        try await FrontEndChecks.concurrency(lighttpd, target: "/spawned/hello")
    }

    @Test("mode => authorizer: 200 lets lighttpd serve the file, anything else is the denial")
    func authorizer() async throws {
        let directory = try Paths.makeTestDirectory("lighttpd-authorizer")
        let backend = try await Backend.serve(app: "authorizer", protocol: .fastcgi, directory: directory)
        defer { backend.stop() }
        try FileManager.default.createDirectory(atPath: directory + "/htdocs/protected", withIntermediateDirectories: true)
        try "secret page\n".write(toFile: directory + "/htdocs/protected/page.txt", atomically: true, encoding: .utf8)
        let config = try ShippedConfig.lighttpd("lighttpd/postern-authorizer.conf", variables: ["postern_authorizer_port": "\(backend.port!)"])
        let lighttpd = try await FrontEnd.lighttpd(snippets: [config], directory: directory)
        defer { lighttpd.stop() }
        let granted = try await BlockingClient.get(port: lighttpd.port, "/protected/page.txt", headers: ["X-Postern-Token: let-me-in"])
        #expect(granted.status == 200, "\(lighttpd.logs)")
        #expect(String(decoding: granted.body, as: UTF8.self) == "secret page\n")
        let denied = try await BlockingClient.get(port: lighttpd.port, "/protected/page.txt")
        #expect(denied.status == 403)
        #expect(!String(decoding: denied.body, as: UTF8.self).contains("secret"))
    }

    @Test("mod_scgi, speaking SCGI and uwsgi")
    func scgiAndUWSGI() async throws {
        let directory = try Paths.makeTestDirectory("lighttpd-scgi")
        let scgi = try await Backend.serve(app: "demo", protocol: .scgi, directory: directory)
        let uwsgi = try await Backend.serve(app: "demo", protocol: .uwsgi, directory: directory)
        defer {
            scgi.stop()
            uwsgi.stop()
        }
        let config = try ShippedConfig.lighttpd(
            "lighttpd/postern-scgi.conf",
            variables: [
                "postern_scgi_port": "\(scgi.port!)", "postern_uwsgi_port": "\(uwsgi.port!)",
            ])
        let lighttpd = try await FrontEnd.lighttpd(snippets: [config], directory: directory)
        defer { lighttpd.stop() }
        let overSCGI = try await FrontEndChecks.environ(lighttpd, prefix: "/scgi")
        #expect(overSCGI["gateway.protocol"] == "scgi")
        #expect(overSCGI["SCRIPT_NAME"] == "/scgi")
        try await FrontEndChecks.echo(lighttpd, target: "/scgi/echo")
        try await FrontEndChecks.concurrency(lighttpd, target: "/scgi/hello")
        let overUWSGI = try await FrontEndChecks.environ(lighttpd, prefix: "/uwsgi")
        #expect(overUWSGI["gateway.protocol"] == "uwsgi")
        #expect(overUWSGI["SCRIPT_NAME"] == "/uwsgi")
        #expect(overUWSGI["PATH_INFO"] == "/some/where x")
        try await FrontEndChecks.echo(lighttpd, target: "/uwsgi/echo")
    }

    @Test("mod_cgi runs an app binary as a CGI program")
    func cgi() async throws {
        let directory = try Paths.makeTestDirectory("lighttpd-cgi")
        let cgiDirectory = try CGIBinaries.install(in: directory)
        let config = try ShippedConfig.lighttpd("lighttpd/postern-cgi.conf", variables: ["postern_cgi_dir": "\"\(cgiDirectory)\""])
        let lighttpd = try await FrontEnd.lighttpd(snippets: [config], directory: directory)
        defer { lighttpd.stop() }
        let environ = try await FrontEndChecks.environ(lighttpd, prefix: "/cgi-bin/environ")
        #expect(environ["SCRIPT_NAME"] == "/cgi-bin/environ")
        #expect(environ["PATH_INFO"] == "/some/where x")
        #expect(environ["gateway.run_once"] == "true")
        try await FrontEndChecks.echo(lighttpd, target: "/cgi-bin/echo")
        try await FrontEndChecks.concurrency(lighttpd, target: "/cgi-bin/hello")
    }

    @Test("two backends balanced: both serve")
    func balanced() async throws {
        let directory = try Paths.makeTestDirectory("lighttpd-balanced")
        let a = try await Backend.serve(app: "hello", protocol: .fastcgi, directory: directory)
        let b = try await Backend.serve(app: "environ", protocol: .fastcgi, directory: directory)
        defer {
            a.stop()
            b.stop()
        }
        let config = try ShippedConfig.lighttpd(
            "lighttpd/postern-balanced.conf",
            variables: [
                "postern_port_a": "\(a.port!)", "postern_port_b": "\(b.port!)",
            ])
        let lighttpd = try await FrontEnd.lighttpd(snippets: [config], directory: directory)
        defer { lighttpd.stop() }
        var bodies: Set<String> = []
        for _ in 0..<8 {
            let response = try await BlockingClient.get(port: lighttpd.port, "/balanced/x")
            #expect(response.status == 200)
            bodies.insert(String(decoding: response.body, as: UTF8.self).hasPrefix("Hello") ? "hello" : "environ")
        }
        #expect(bodies == ["hello", "environ"], "\(lighttpd.logs)")
        try await FrontEndChecks.concurrency(lighttpd, target: "/balanced/x")
    }
}
