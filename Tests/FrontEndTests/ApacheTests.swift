import Foundation
import PosternTestSupport
import Testing

/// The shipped `apache/` configurations, proven against Apache httpd on loopback.
@Suite("Apache httpd", .serialized)
struct ApacheTests {
    /// Apache's children run as www-data: a 0660 socket must be in its group, as
    /// docs/deploying.md says.
    func giveToWebServerGroup(_ path: String) throws {
        guard let group = getgrnam("www-data") else { throw TestFailure("no www-data group") }
        #expect(chown(path, 0, group.pointee.gr_gid) == 0)
    }

    @Test("mod_proxy_fcgi to a TCP port and to a unix socket")
    func proxyFastCGI() async throws {
        let directory = try Paths.makeTestDirectory("apache-proxy-fcgi")
        let tcp = try await Backend.serve(app: "demo", protocol: .fastcgi, directory: directory)
        let socket = directory + "/app.sock"
        let unix = try await Backend(
            arguments: ["serve", "--app", "demo", "--fastcgi", "unix:" + socket, "--log-level", "warning"], socketPath: socket, directory: directory,
            name: "unix")
        defer {
            tcp.stop()
            unix.stop()
        }
        try giveToWebServerGroup(socket)
        let config = try ShippedConfig.apache(
            "apache/postern-proxy-fcgi.conf",
            defines: [
                "POSTERN_FASTCGI": "127.0.0.1:\(tcp.port!)", "POSTERN_SOCKET": socket,
            ])
        let apache = try await FrontEnd.apache(snippets: [config], directory: directory)
        defer { apache.stop() }

        let environ = try await FrontEndChecks.environ(apache, prefix: "/app")
        // With proxy-fcgi-pathinfo=1 Apache splits at the ProxyPass prefix.
        #expect(environ["SCRIPT_NAME"] == "/app")
        #expect(environ["PATH_INFO"] == "/some/where x")
        try await FrontEndChecks.echo(apache, target: "/app/echo")
        try await FrontEndChecks.concurrency(apache, target: "/app/hello")

        let overUnix = try await FrontEndChecks.environ(apache, prefix: "/app-unix")
        #expect(overUnix["gateway.protocol"] == "fastcgi")
        try await FrontEndChecks.echo(apache, target: "/app-unix/echo")
    }

    @Test("mod_proxy_fcgi to the CGI host under a prefix: SCRIPT_FILENAME proxy:fcgi://… is ignored, the script found by PATH_INFO")
    func cgiHost() async throws {
        let directory = try Paths.makeTestDirectory("apache-cgi-host")
        let backend = try await Backend.serve(
            app: "hello", protocol: .fastcgi, directory: directory, extra: ["--cgi-root", Paths.root + "/examples/cgi-bin", "--mount", "/legacy"])
        defer { backend.stop() }
        let config = try ShippedConfig.apache("apache/postern-cgi-host.conf", defines: ["POSTERN_CGI_HOST": "127.0.0.1:\(backend.port!)"])
        let apache = try await FrontEnd.apache(snippets: [config], directory: directory)
        defer { apache.stop() }
        let dump = try await BlockingClient.get(port: apache.port, "/legacy/env.sh/extra/path?x=1")
        let variables = String(decoding: dump.body, as: UTF8.self)
        #expect(dump.status == 200, "\(variables)\n\(apache.logs)")
        #expect(variables.contains("\nSCRIPT_NAME=/legacy/env.sh\n"), "\(variables)")
        #expect(variables.contains("\nPATH_INFO=/extra/path\n"), "\(variables)")
        #expect(variables.contains("\nQUERY_STRING=x=1\n"), "\(variables)")
        let form = try await BlockingClient.get(port: apache.port, "/legacy/form.py?name=you")
        #expect(form.status == 200 && String(decoding: form.body, as: UTF8.self).contains("you"), "\(String(decoding: form.body, as: UTF8.self))")
        let missing = try await BlockingClient.get(port: apache.port, "/legacy/no-such-script")
        #expect(missing.status == 404)
    }

    @Test("mod_proxy_scgi")
    func proxySCGI() async throws {
        let directory = try Paths.makeTestDirectory("apache-proxy-scgi")
        let backend = try await Backend.serve(app: "demo", protocol: .scgi, directory: directory, extra: ["--mount", "/scgi"])
        defer { backend.stop() }
        let config = try ShippedConfig.apache("apache/postern-proxy-scgi.conf", defines: ["POSTERN_SCGI": "127.0.0.1:\(backend.port!)"])
        let apache = try await FrontEnd.apache(snippets: [config], directory: directory)
        defer { apache.stop() }
        let environ = try await FrontEndChecks.environ(apache, prefix: "/scgi")
        #expect(environ["gateway.protocol"] == "scgi")
        #expect(environ["GATEWAY_INTERFACE"] == "CGI/1.1")
        #expect(environ["SCRIPT_NAME"] == "/scgi")
        #expect(environ["PATH_INFO"] == "/some/where x")
        try await FrontEndChecks.echo(apache, target: "/scgi/echo")
        try await FrontEndChecks.concurrency(apache, target: "/scgi/hello")
    }

    @Test("mod_proxy_uwsgi")
    func proxyUWSGI() async throws {
        let directory = try Paths.makeTestDirectory("apache-proxy-uwsgi")
        let backend = try await Backend.serve(app: "demo", protocol: .uwsgi, directory: directory, extra: ["--mount", "/uwsgi"])
        defer { backend.stop() }
        let config = try ShippedConfig.apache("apache/postern-proxy-uwsgi.conf", defines: ["POSTERN_UWSGI": "127.0.0.1:\(backend.port!)"])
        let apache = try await FrontEnd.apache(snippets: [config], directory: directory)
        defer { apache.stop() }
        let environ = try await FrontEndChecks.environ(apache, prefix: "/uwsgi")
        #expect(environ["gateway.protocol"] == "uwsgi")
        #expect(environ["SCRIPT_NAME"] == "/uwsgi")
        #expect(environ["PATH_INFO"] == "/some/where x")
        try await FrontEndChecks.echo(apache, target: "/uwsgi/echo")
        try await FrontEndChecks.concurrency(apache, target: "/uwsgi/hello")
    }

    @Test("mod_fcgid spawns the app, which finds its socket on fd 0")
    func fcgid() async throws {
        let directory = try Paths.makeTestDirectory("apache-fcgid")
        let fcgidDirectory = directory + "/fcgid"
        try FileManager.default.createDirectory(atPath: fcgidDirectory, withIntermediateDirectories: true)
        guard let user = getpwnam("www-data") else { throw TestFailure("no www-data user") }
        #expect(chown(fcgidDirectory, user.pointee.pw_uid, user.pointee.pw_gid) == 0)
        let config = try ShippedConfig.apache(
            "apache/postern-fcgid.conf",
            defines: [
                "POSTERN_BINARY": Paths.binary("postern"), "POSTERN_FCGID_DIR": fcgidDirectory,
            ])
        let apache = try await FrontEnd.apache(snippets: [config], directory: directory)
        defer { apache.stop() }
        let environ = try await FrontEndChecks.environ(apache, prefix: "/fcgid")
        #expect(environ["gateway.protocol"] == "fastcgi", "spawned by mod_fcgid, the app must serve FastCGI on fd 0")
        #expect(environ["SCRIPT_NAME"] == "/fcgid")
        #expect(environ["PATH_INFO"] == "/some/where x")
        // The spawned process is a child of Apache, started with no listener flag.
        let spawned = try Processes.commandLines().filter { $0.hasPrefix(Paths.binary("postern")) }
        #expect(spawned.contains { $0 == Paths.binary("postern") }, "\(spawned)")
        try await FrontEndChecks.echo(apache, target: "/fcgid/echo")
        try await FrontEndChecks.concurrency(apache, target: "/fcgid/hello")
        // Basic credentials reach the app (CGIPassAuth On in the shipped file).
        let credentials = try await BlockingClient.get(
            port: apache.port, "/fcgid" + FrontEndChecks.environSuffix, headers: ["Authorization: Basic dXNlcjpwYXNz"])
        let seen = try JSONSerialization.jsonObject(with: Data(credentials.body)) as? [String: String]
        #expect(seen?["HTTP_AUTHORIZATION"] == "Basic dXNlcjpwYXNz", "mod_fcgid: \(String(describing: seen?["HTTP_AUTHORIZATION"]))")
    }

    @Test("mod_cgid runs an app binary as a CGI program")
    func cgi() async throws {
        let directory = try Paths.makeTestDirectory("apache-cgi")
        let cgiDirectory = try CGIBinaries.install(in: directory)
        let config = try ShippedConfig.apache("apache/postern-cgi.conf", defines: ["POSTERN_CGI_DIR": cgiDirectory])
        let apache = try await FrontEnd.apache(snippets: [config], directory: directory)
        defer { apache.stop() }
        let environ = try await FrontEndChecks.environ(apache, prefix: "/cgi-bin/environ")
        #expect(environ["SCRIPT_NAME"] == "/cgi-bin/environ")
        #expect(environ["PATH_INFO"] == "/some/where x")
        #expect(environ["gateway.run_once"] == "true")
        #expect(environ["gateway.protocol"] == "cgi")
        try await FrontEndChecks.echo(apache, target: "/cgi-bin/echo")
        try await FrontEndChecks.concurrency(apache, target: "/cgi-bin/hello")
    }

    @Test("mod_authnz_fcgi with a Postern authorizer: 200 grants, 403 denies")
    func authorizer() async throws {
        let directory = try Paths.makeTestDirectory("apache-authnz")
        let backend = try await Backend.serve(app: "authorizer", protocol: .fastcgi, directory: directory)
        defer { backend.stop() }
        try FileManager.default.createDirectory(atPath: directory + "/htdocs/protected", withIntermediateDirectories: true)
        try "secret page\n".write(toFile: directory + "/htdocs/protected/page.txt", atomically: true, encoding: .utf8)
        let config = try ShippedConfig.apache("apache/postern-authnz-fcgi.conf", defines: ["POSTERN_AUTHORIZER": "127.0.0.1:\(backend.port!)"])
        let apache = try await FrontEnd.apache(snippets: [config], directory: directory)
        defer { apache.stop() }
        let granted = try await BlockingClient.get(port: apache.port, "/protected/page.txt", headers: ["X-Postern-Token: let-me-in"])
        #expect(granted.status == 200, "\(apache.logs)")
        #expect(String(decoding: granted.body, as: UTF8.self) == "secret page\n")
        let denied = try await BlockingClient.get(port: apache.port, "/protected/page.txt")
        #expect(denied.status == 403)
        #expect(!String(decoding: denied.body, as: UTF8.self).contains("secret"))
    }

    @Test("mod_proxy_balancer across two Postern processes: both serve")
    func balancer() async throws {
        let directory = try Paths.makeTestDirectory("apache-balancer")
        let a = try await Backend.serve(app: "hello", protocol: .fastcgi, directory: directory)
        let b = try await Backend.serve(app: "environ", protocol: .fastcgi, directory: directory)
        defer {
            a.stop()
            b.stop()
        }
        let config = try ShippedConfig.apache(
            "apache/postern-balancer.conf",
            defines: [
                "POSTERN_BACKEND_A": "127.0.0.1:\(a.port!)", "POSTERN_BACKEND_B": "127.0.0.1:\(b.port!)",
            ])
        let apache = try await FrontEnd.apache(snippets: [config], directory: directory)
        defer { apache.stop() }
        var bodies: Set<String> = []
        for _ in 0..<8 {
            let response = try await BlockingClient.get(port: apache.port, "/balanced/x")
            #expect(response.status == 200)
            bodies.insert(String(decoding: response.body, as: UTF8.self).hasPrefix("Hello") ? "hello" : "environ")
        }
        #expect(bodies == ["hello", "environ"], "\(apache.logs)")
        try await FrontEndChecks.concurrency(apache, target: "/balanced/x")
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Reading /proc for the processes a front-end spawned.
enum Processes {
    static func commandLines() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: "/proc").compactMap { entry in
            guard Int(entry) != nil, let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"), !data.isEmpty else { return nil }
            return String(decoding: data.dropLast(), as: UTF8.self).replacingOccurrences(of: "\0", with: " ")
        }
    }
}

/// The app binaries installed in a cgi-bin directory of the test's own, as a user would.
enum CGIBinaries {
    static func install(in directory: String) throws -> String {
        let cgiDirectory = directory + "/cgi-bin"
        try FileManager.default.createDirectory(atPath: cgiDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        for name in ["hello", "environ", "echo"] {
            try FileManager.default.copyItem(atPath: Paths.binary(name), toPath: cgiDirectory + "/" + name)
        }
        return cgiDirectory
    }
}
