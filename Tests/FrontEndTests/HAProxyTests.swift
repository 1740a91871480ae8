import Foundation
import PosternTestSupport
import Testing

/// The shipped `examples/haproxy/` configuration, proven against HAProxy on loopback.
@Suite("HAProxy", .serialized)
struct HAProxyTests {
    @Test("fcgi-app over TLS (proto fcgi ssl) with verification both ways, keep-conn, to two workers")
    func fastCGIOverTLS() async throws {
        let directory = try Paths.makeTestDirectory("haproxy-fcgi-tls")
        let made = try TestCertificates.make(in: directory)
        let port = try Ports.free()
        let backend = try await Backend(
            arguments: [
                "serve", "--app", "demo", "--fastcgi-tls", "127.0.0.1:\(port)", "--tls-certificate", made.serverCertificate, "--tls-key",
                made.serverKey, "--tls-client-ca", made.ca, "--workers", "2", "--log-level", "warning",
            ], port: port, directory: directory)
        defer { backend.stop() }
        let config = try ShippedConfig.nginx(
            "examples/haproxy/postern-fastcgi-tls.cfg", replacing: ["127.0.0.1:9443": "127.0.0.1:\(port)", "/etc/haproxy/postern-tls/": directory + "/"])
        let haproxy = try await FrontEnd.haproxy(config: config, directory: directory)
        defer { haproxy.stop() }
        let environ = try await FrontEndChecks.environ(haproxy, prefix: "/fcgi")
        #expect(environ["gateway.protocol"] == "fastcgi")
        #expect(environ["SCRIPT_NAME"] == "/fcgi", "\(environ)")
        try await FrontEndChecks.echo(haproxy, target: "/fcgi/echo")
        try await FrontEndChecks.concurrency(haproxy, target: "/fcgi/hello")

        // HAProxy with another CA's client certificate is refused by the backend: no answer from
        // it, so 502 (the handshake failed on a connection HAProxy counted as made) or 503 (as a
        // connection error, after its retries): never the app's 200.
        let intruder = config.replacingOccurrences(of: made.clientWithKey, with: directory + "/other-client-with-key.pem")
        let other = try String(contentsOfFile: made.otherClientCertificate, encoding: .utf8) + String(contentsOfFile: made.otherClientKey, encoding: .utf8)
        try other.write(toFile: directory + "/other-client-with-key.pem", atomically: true, encoding: .utf8)
        let refusedDirectory = try Paths.makeTestDirectory("haproxy-fcgi-tls-intruder")
        let refused = try await FrontEnd.haproxy(config: intruder, directory: refusedDirectory)
        defer { refused.stop() }
        let answer = try await BlockingClient.get(port: refused.port, "/fcgi/hello")
        #expect([502, 503].contains(answer.status), "\(answer.status): \(String(decoding: answer.body, as: UTF8.self))")
    }
}
