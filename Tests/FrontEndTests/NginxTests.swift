import Foundation
import PosternTestSupport
import Testing

/// The shipped `examples/nginx/` configurations, proven against nginx on loopback.
@Suite("nginx", .serialized)
struct NginxTests {
    @Test("fastcgi_pass, with the split path and httpoxy stopped at the gateway")
    func fastCGI() async throws {
        let directory = try Paths.makeTestDirectory("nginx-fcgi")
        let backend = try await Backend.serve(app: "demo", protocol: .fastcgi, directory: directory)
        defer { backend.stop() }
        let config = try ShippedConfig.nginx("examples/nginx/postern-fastcgi.conf", replacing: ["127.0.0.1:9000": "127.0.0.1:\(backend.port!)"])
        let nginx = try await FrontEnd.nginx(snippets: [config], directory: directory)
        defer { nginx.stop() }
        let environ = try await FrontEndChecks.environ(nginx, prefix: "/app")
        #expect(environ["SCRIPT_NAME"] == "/app")
        #expect(environ["PATH_INFO"] == "/some/where x")
        try await FrontEndChecks.echo(nginx, target: "/app/echo")
        try await FrontEndChecks.concurrency(nginx, target: "/app/hello")
    }

    @Test("fastcgi_keep_conn on with an upstream keepalive pool")
    func fastCGIKeepAlive() async throws {
        let directory = try Paths.makeTestDirectory("nginx-keepalive")
        let backend = try await Backend.serve(app: "demo", protocol: .fastcgi, directory: directory)
        defer { backend.stop() }
        let config = try ShippedConfig.nginx("examples/nginx/postern-fastcgi-keepalive.conf", replacing: ["127.0.0.1:9000": "127.0.0.1:\(backend.port!)"])
        let nginx = try await FrontEnd.nginx(snippets: [config], directory: directory)
        defer { nginx.stop() }
        let first = try await FrontEndChecks.environ(nginx, prefix: "/app")
        let second = try await FrontEndChecks.environ(nginx, prefix: "/app")
        #expect(first["SCRIPT_NAME"] == "/app")
        _ = second
        try await FrontEndChecks.echo(nginx, target: "/app/echo")
        try await FrontEndChecks.concurrency(nginx, target: "/app/hello")
    }

    @Test("scgi_pass")
    func scgi() async throws {
        let directory = try Paths.makeTestDirectory("nginx-scgi")
        let backend = try await Backend.serve(app: "demo", protocol: .scgi, directory: directory)
        defer { backend.stop() }
        let config = try ShippedConfig.nginx("examples/nginx/postern-scgi.conf", replacing: ["127.0.0.1:4000": "127.0.0.1:\(backend.port!)"])
        let nginx = try await FrontEnd.nginx(snippets: [config], directory: directory)
        defer { nginx.stop() }
        let environ = try await FrontEndChecks.environ(nginx, prefix: "/scgi")
        #expect(environ["gateway.protocol"] == "scgi")
        #expect(environ["SCRIPT_NAME"] == "/scgi")
        #expect(environ["PATH_INFO"] == "/some/where x")
        try await FrontEndChecks.echo(nginx, target: "/scgi/echo")
        try await FrontEndChecks.concurrency(nginx, target: "/scgi/hello")
    }

    @Test("legacy CGI scripts under a prefix: scgi_pass to the CGI host with --mount")
    func cgiHostUnderAPrefix() async throws {
        let directory = try Paths.makeTestDirectory("nginx-cgi-host")
        let backend = try await Backend.serve(
            app: "hello", protocol: .scgi, directory: directory, extra: ["--cgi-root", Paths.root + "/examples/cgi-bin", "--mount", "/legacy"])
        defer { backend.stop() }
        let config = try ShippedConfig.nginx("examples/nginx/postern-cgi-host.conf", replacing: ["127.0.0.1:4100": "127.0.0.1:\(backend.port!)"])
        let nginx = try await FrontEnd.nginx(snippets: [config], directory: directory)
        defer { nginx.stop() }
        let dump = try await BlockingClient.get(port: nginx.port, "/legacy/env.sh/extra/path?x=1")
        let variables = String(decoding: dump.body, as: UTF8.self)
        #expect(dump.status == 200, "\(variables)\n\(nginx.logs)")
        #expect(variables.contains("\nSCRIPT_NAME=/legacy/env.sh\n"), "\(variables)")
        #expect(variables.contains("\nPATH_INFO=/extra/path\n"), "\(variables)")
        #expect(variables.contains("\nQUERY_STRING=x=1\n"), "\(variables)")
        let form = try await BlockingClient.get(port: nginx.port, "/legacy/form.py?name=you")
        #expect(form.status == 200 && String(decoding: form.body, as: UTF8.self).contains("you"), "\(String(decoding: form.body, as: UTF8.self))")
        let missing = try await BlockingClient.get(port: nginx.port, "/legacy/no-such-script")
        #expect(missing.status == 404)
    }

    @Test("uwsgi_pass")
    func uwsgi() async throws {
        let directory = try Paths.makeTestDirectory("nginx-uwsgi")
        let backend = try await Backend.serve(app: "demo", protocol: .uwsgi, directory: directory)
        defer { backend.stop() }
        let config = try ShippedConfig.nginx("examples/nginx/postern-uwsgi.conf", replacing: ["127.0.0.1:3031": "127.0.0.1:\(backend.port!)"])
        let nginx = try await FrontEnd.nginx(snippets: [config], directory: directory)
        defer { nginx.stop() }
        let environ = try await FrontEndChecks.environ(nginx, prefix: "/uwsgi")
        #expect(environ["gateway.protocol"] == "uwsgi")
        #expect(environ["SCRIPT_NAME"] == "/uwsgi")
        #expect(environ["PATH_INFO"] == "/some/where x")
        try await FrontEndChecks.echo(nginx, target: "/uwsgi/echo")
        try await FrontEndChecks.concurrency(nginx, target: "/uwsgi/hello")
    }

    @Test("uwsgi_pass suwsgi:// with verification both ways, to a TLS listener shared by two workers; the front-end's HTTPS is left alone")
    func suwsgi() async throws {
        let directory = try Paths.makeTestDirectory("nginx-suwsgi")
        let made = try TestCertificates.make(in: directory)
        let port = try Ports.free()
        let backend = try await Backend(
            arguments: [
                "serve", "--app", "demo", "--suwsgi", "127.0.0.1:\(port)", "--tls-certificate", made.serverCertificate, "--tls-key", made.serverKey,
                "--tls-client-ca", made.ca, "--workers", "2", "--log-level", "warning",
            ], port: port, directory: directory)
        defer { backend.stop() }
        let config = try ShippedConfig.nginx(
            "examples/nginx/postern-suwsgi.conf",
            replacing: ["127.0.0.1:3032": "127.0.0.1:\(port)", "/etc/nginx/postern-tls/": directory + "/"])
        let nginx = try await FrontEnd.nginx(snippets: [config], directory: directory)
        defer { nginx.stop() }
        let environ = try await FrontEndChecks.environ(nginx, prefix: "/suwsgi")
        #expect(environ["gateway.protocol"] == "uwsgi")
        #expect(environ["SCRIPT_NAME"] == "/suwsgi")
        // The user reached nginx in plaintext: the TLS hop to the backend is not the user's.
        #expect(environ["HTTPS"] == nil && environ["gateway.url_scheme"] == "http", "\(environ)")
        try await FrontEndChecks.echo(nginx, target: "/suwsgi/echo")
        try await FrontEndChecks.concurrency(nginx, target: "/suwsgi/hello")

        // nginx with another CA's client certificate is refused by the backend: 502.
        let intruder = config.replacingOccurrences(of: directory + "/client.", with: directory + "/other-client.")
        let other = try Paths.makeTestDirectory("nginx-suwsgi-intruder")
        let refused = try await FrontEnd.nginx(snippets: [intruder], directory: other)
        defer { refused.stop() }
        let answer = try await BlockingClient.get(port: refused.port, "/suwsgi/hello")
        #expect(answer.status == 502, "\(String(decoding: answer.body, as: UTF8.self))")
    }

}
