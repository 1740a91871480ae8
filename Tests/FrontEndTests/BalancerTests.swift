import Foundation
import PosternTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Postern as a member of the front-ends' balancers: three servers on 127.0.0.1, .2 and .3
/// (three hosts), the shipped configurations, and a rolling restart under load.
@Suite("Balancers", .serialized)
struct BalancerTests {
    static let hosts = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]

    /// One member: `postern serve --app demo` on `host`:`port` with `listener` and the test
    /// certificates, and `extra`.
    static func member(
        _ host: String, port: Int, listener: String, certificates made: TestCertificates, extra: [String], directory: String
    ) async throws -> Backend {
        try await Backend(
            arguments: [
                "serve", "--app", "demo", "--\(listener)", "\(host):\(port)", "--tls-certificate", made.serverCertificate, "--tls-key", made.serverKey,
                "--tls-client-ca", made.ca, "--log-level", "info",
            ] + extra,
            port: port, host: host, directory: directory, name: "member")
    }

    /// Each member in turn stopped with SIGTERM (its `--drain-delay`, then a graceful stop) and
    /// started again, `settle` seconds apart, while `load` runs; then the load's result.
    /// - Parameter downtime: how long a member stays down between its stop and its start (a
    ///   real restart's), so that the front-end meets it down.
    static func rollingRestart(
        _ members: inout [Backend], load: WrkLoad, settle: Duration, downtime: Duration = .zero, start: (String) async throws -> Backend
    ) async throws -> WrkLoad.Result {
        try await Task.sleep(for: settle)
        for index in members.indices {
            members[index].stop()
            #expect(!members[index].process.isRunning)
            if downtime > .zero { try await Task.sleep(for: downtime) }
            members[index] = try await start(hosts[index])
            try await Task.sleep(for: settle)
        }
        return try await load.finish()
    }

    @Test("nginx upstream of three suwsgi members: verified both ways; a rolling restart under GETs and 1 KiB POSTs fails no request")
    func nginxSuwsgiUpstream() async throws {
        let directory = try Paths.makeTestDirectory("balancer-nginx")
        let made = try TestCertificates.make(in: directory)
        let port = try Ports.free()
        let start = { (host: String) in
            try await Self.member(host, port: port, listener: "suwsgi", certificates: made, extra: [], directory: directory)
        }
        var members: [Backend] = []
        for host in Self.hosts { members.append(try await start(host)) }
        defer { for member in members { member.stop() } }
        let config = try ShippedConfig.nginx(
            "examples/nginx/postern-suwsgi-upstream.conf", replacing: [":3032": ":\(port)", "/etc/nginx/postern-tls/": directory + "/"])
        let nginx = try await FrontEnd.nginx(snippets: [config], directory: directory)
        defer { nginx.stop() }
        try await FrontEndChecks.echo(nginx, target: "/echo")

        // A member refuses a client without a certificate, and one with another CA's.
        let refused = try await PosternCommand.run(["request", "--cacert", made.ca, "suwsgi://127.0.0.2:\(port)/hello"])
        #expect(refused.status == 1, "\(refused)")
        let intruder = try await PosternCommand.run([
            "request", "--cacert", made.ca, "--cert", made.otherClientCertificate, "--key", made.otherClientKey, "suwsgi://127.0.0.3:\(port)/hello",
        ])
        #expect(intruder.status == 1, "\(intruder)")

        // Members restarted farther apart than fail_timeout (2 s), as the config says.
        let load = try WrkLoad(port: nginx.port, seconds: 12, directory: directory)
        // Each member down 300 ms: nginx meets it refusing connections (a member that comes
        // back within a few milliseconds may be met by none; seen once in CI).
        let result = try await Self.rollingRestart(&members, load: load, settle: .milliseconds(2500), downtime: .milliseconds(300), start: start)
        #expect(result.requests > 500, "\(result)")
        #expect(result.failures == 0, "\(result)\n\(nginx.logs)\n\(members.map(\.process.output).joined(separator: "\n"))")
        // Every member was stopped gracefully, and refused connections nginx passed on.
        for (host, member) in zip(Self.hosts, members) {
            #expect(member.process.output.contains("graceful shutdown"), "\(host): \(member.process.output)")
        }
        #expect(try String(contentsOfFile: directory + "/nginx-error.log", encoding: .utf8).contains("Connection refused"))
    }

    @Test("HAProxy: three FastCGI-over-TLS members checked on --ping-path; a rolling restart with --drain-delay fails no request")
    func haproxyFastCGITLS() async throws {
        let directory = try Paths.makeTestDirectory("balancer-haproxy")
        let made = try TestCertificates.make(in: directory)
        let port = try Ports.free()
        let start = { (host: String) in
            try await Self.member(
                host, port: port, listener: "fastcgi-tls", certificates: made, extra: ["--ping-path", "/ping", "--drain-delay", "2"], directory: directory)
        }
        var members: [Backend] = []
        for host in Self.hosts { members.append(try await start(host)) }
        defer { for member in members { member.stop() } }
        let config = try ShippedConfig.nginx(
            "examples/haproxy/postern-balanced.cfg", replacing: [":9443": ":\(port)", "/etc/haproxy/postern-tls/": directory + "/"])
        let haproxy = try await FrontEnd.haproxy(config: config, directory: directory)
        defer { haproxy.stop() }
        // The checks have marked every member up (rise 2, inter 500 ms).
        try await Task.sleep(for: .milliseconds(1500))
        try await FrontEndChecks.echo(haproxy, target: "/echo")
        let ping = try await BlockingClient.get(port: haproxy.port, "/ping")
        #expect(ping.status == 200 && String(decoding: ping.body, as: UTF8.self) == "pong\n", "\(ping.status)")

        let load = try WrkLoad(port: haproxy.port, seconds: 14, directory: directory)
        let result = try await Self.rollingRestart(&members, load: load, settle: .milliseconds(2000), start: start)
        #expect(result.requests > 500, "\(result)")
        #expect(result.failures == 0, "\(result)\n\(haproxy.logs)")
        // HAProxy saw each member go down (its 503 while draining) and come back.
        let log = haproxy.process.output + haproxy.logs
        #expect(log.contains("is DOWN"), "\(log)")
        #expect(log.contains("is UP"), "\(log)")
    }
}

extension BalancerTests {
    @Test("Apache mod_proxy_balancer with mod_proxy_hcheck on --ping-path: a draining member is taken out while it still serves")
    func apacheHealthChecked() async throws {
        let directory = try Paths.makeTestDirectory("balancer-apache")
        let port = try Ports.free()
        var members: [Backend] = []
        for host in Self.hosts {
            members.append(
                try await Backend(
                    arguments: [
                        "serve", "--app", "ops", "--http", "\(host):\(port)", "--ping-path", "/ping", "--drain-delay", "6", "--log-level", "info",
                    ], port: port, host: host, directory: directory, name: "member"))
        }
        defer { for member in members { member.stop() } }
        var defines: [String: String] = [:]
        for (index, host) in Self.hosts.enumerated() { defines["POSTERN_MEMBER_\(index + 1)"] = "\(host):\(port)" }
        let config = try ShippedConfig.apache("apache/postern-balancer-hcheck.conf", defines: defines)
        let apache = try await FrontEnd.apache(snippets: [config], directory: directory)
        defer { apache.stop() }
        /// The pids that answered `count` requests through Apache; every answer must be a 200.
        func answering(_ count: Int) async throws -> Set<Int32> {
            var pids: Set<Int32> = []
            for _ in 0..<count {
                let response = try await BlockingClient.get(port: apache.port, "/checked/pid")
                let body = String(decoding: response.body, as: UTF8.self)
                #expect(response.status == 200, "\(response.status) \(body)\n\(apache.logs)")
                if let pid = Int32(body.dropFirst("pid ".count).trimmingCharacters(in: .whitespacesAndNewlines)) { pids.insert(pid) }
            }
            return pids
        }
        let pids = Set(members.map(\.process.pid))
        #expect(try await answering(12) == pids, "\(apache.logs)")
        // The second member drains: its ping says 503, the check takes it out, it still runs.
        kill(members[1].process.pid, SIGTERM)
        try await Task.sleep(for: .milliseconds(3000))
        #expect(members[1].process.isRunning)
        #expect(try await answering(12) == pids.subtracting([members[1].process.pid]), "\(apache.logs)")
        #expect(members[1].process.isRunning, "the answers came while the member still ran")
        #expect(members[1].process.output.contains("SIGTERM: draining"))
    }
}
