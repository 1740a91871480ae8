import Foundation
import PosternTestSupport
import Testing

/// The guide's own app (examples/greeter): a package of its own that depends on Postern, built as
/// a user builds it (scripts/build-greeter.sh), then deployed with the shipped files under each
/// front-end, with flags on its command line where the front-end spawns it.
@Suite("Your own app, from your own package", .serialized)
struct OwnAppTests {
    /// The greeter binary, built (or brought up to date) once per test run.
    static let greeter: Task<String, any Error> = Task.detached {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.root + "/scripts/build-greeter.sh")
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let path = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        process.waitUntilExit()
        guard process.terminationStatus == 0, FileManager.default.isExecutableFile(atPath: path) else {
            throw TestFailure("scripts/build-greeter.sh failed (status \(process.terminationStatus))")
        }
        return path
    }

    static func body(_ response: ParsedResponse) -> String { String(decoding: response.body, as: UTF8.self) }

    /// Waits until `path` holds `text` (a log line written after the response went out).
    static func waitFor(_ text: String, in path: String) async throws -> Bool {
        for _ in 0..<50 {
            if let log = try? String(contentsOfFile: path, encoding: .utf8), log.contains(text) { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    @Test("mod_fcgid: FcgidWrapper with flags spawns the greeter; the flags reach it, FCGI_STDERR reaches Apache's log")
    func modFcgid() async throws {
        let greeter = try await Self.greeter.value
        let directory = try Paths.makeTestDirectory("own-app-fcgid")
        let fcgidDirectory = directory + "/fcgid"
        try FileManager.default.createDirectory(atPath: fcgidDirectory, withIntermediateDirectories: true)
        guard let user = getpwnam("www-data") else { throw TestFailure("no www-data user") }
        #expect(chown(fcgidDirectory, user.pointee.pw_uid, user.pointee.pw_gid) == 0)
        let accessLog = fcgidDirectory + "/greeter-access.log"
        let config = try ShippedConfig.apache(
            "apache/postern-fcgid.conf",
            defines: [
                "POSTERN_BINARY": "\"\(greeter) --access-log \(accessLog)\"", "POSTERN_FCGID_DIR": fcgidDirectory,
            ])
        let apache = try await FrontEnd.apache(snippets: [config], directory: directory)
        defer { apache.stop() }
        let response = try await BlockingClient.get(port: apache.port, "/fcgid/?ada")
        #expect(response.status == 200, "\(apache.logs)")
        #expect(Self.body(response) == "Hello, ada, via fastcgi!\n")
        let spawned = try Processes.commandLines().filter { $0.hasPrefix(greeter) }
        #expect(spawned.contains("\(greeter) --access-log \(accessLog)"), "\(spawned)")
        #expect(try await Self.waitFor("GET /fcgid/?ada", in: accessLog), "the --access-log flag did not reach the app")
        #expect(try await Self.waitFor("greeting ada", in: directory + "/apache-error.log"), "\(apache.logs)")
        try await FrontEndChecks.concurrency(apache, target: "/fcgid/?load")
    }

    @Test("mod_cgid: the same binary is a CGI program")
    func cgi() async throws {
        let greeter = try await Self.greeter.value
        let directory = try Paths.makeTestDirectory("own-app-cgi")
        let cgiDirectory = directory + "/cgi-bin"
        try FileManager.default.createDirectory(atPath: cgiDirectory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: greeter, toPath: cgiDirectory + "/greeter")
        let config = try ShippedConfig.apache("apache/postern-cgi.conf", defines: ["POSTERN_CGI_DIR": cgiDirectory])
        let apache = try await FrontEnd.apache(snippets: [config], directory: directory)
        defer { apache.stop() }
        let response = try await BlockingClient.get(port: apache.port, "/cgi-bin/greeter?grace")
        #expect(response.status == 200, "\(apache.logs)")
        #expect(Self.body(response) == "Hello, grace, via cgi!\n")
        #expect(try await Self.waitFor("greeting grace", in: directory + "/apache-error.log"), "\(apache.logs)")
    }

    @Test("lighttpd bin-path with flags spawns the greeter; the flags reach it")
    func lighttpd() async throws {
        let greeter = try await Self.greeter.value
        let directory = try Paths.makeTestDirectory("own-app-lighttpd")
        let accessLog = directory + "/greeter-access.log"
        let config = try ShippedConfig.lighttpd(
            "lighttpd/postern-fastcgi-spawn.conf",
            variables: [
                "postern_binary": "\"\(greeter) --access-log \(accessLog)\"", "postern_spawn_socket": "\"\(directory)/spawn.sock\"",
            ])
        let lighttpd = try await FrontEnd.lighttpd(snippets: [config], directory: directory)
        defer { lighttpd.stop() }
        let response = try await BlockingClient.get(port: lighttpd.port, "/spawned?linus")
        #expect(response.status == 200, "\(lighttpd.logs)")
        #expect(Self.body(response) == "Hello, linus, via fastcgi!\n")
        #expect(try await Self.waitFor("GET /spawned?linus", in: accessLog), "the --access-log flag did not reach the app")
    }

    @Test("nginx scgi_pass to the greeter run as a service (--scgi)")
    func nginx() async throws {
        let greeter = try await Self.greeter.value
        let directory = try Paths.makeTestDirectory("own-app-nginx")
        let port = try Ports.free()
        let app = try ManagedProcess(
            name: "greeter", executable: greeter, arguments: ["--scgi", "127.0.0.1:\(port)", "--allow-root"], directory: directory)
        defer { app.stop() }
        try await Wait.forPort(port)
        let config = try ShippedConfig.nginx("examples/nginx/postern-scgi.conf", replacing: ["127.0.0.1:4000": "127.0.0.1:\(port)"])
        let nginx = try await FrontEnd.nginx(snippets: [config], directory: directory)
        defer { nginx.stop() }
        let response = try await BlockingClient.get(port: nginx.port, "/scgi?barbara")
        #expect(response.status == 200, "\(nginx.logs)")
        #expect(Self.body(response) == "Hello, barbara, via scgi!\n")
        try await FrontEndChecks.concurrency(nginx, target: "/scgi?load")
    }
}
