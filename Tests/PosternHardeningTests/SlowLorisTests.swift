// Slow-loris on every protocol: 1,000 idle half-sent heads neither block others nor stay open.
import Foundation
import Logging
import NIOCore
import Postern
import PosternApps
import PosternCore
import PosternEngine
import PosternTestSupport
import Testing

extension Hardening {
    @Suite("Slow-loris: idle half-open connections")
    struct SlowLorisTests {
        static let connections = 1000
        /// Header and idle timeout: long enough that a normal request is answered before it
        /// (0.2 s here, 0.5 s with both cores busy), so the answer proves service went on
        /// while the idle connections were open.
        static let timeoutSeconds = 2.0

        static var limits: GatewayLimits {
            var limits = GatewayLimits()
            limits.headerTimeoutSeconds = timeoutSeconds
            limits.idleTimeoutSeconds = timeoutSeconds
            limits.maxConnections = connections + 50
            return limits
        }

        /// Checks that the server closed every one of `idle` by the timeout, and none before it.
        static func expectClosedByTimeout(_ idle: HostileSocket.IdleConnections, _ what: String) async {
            let closing = await HostileSocket.waitUntilClosedByServer(idle, timeout: 20)
            #expect(closing.stillOpen == 0, "\(closing.stillOpen) of \(idle.fds.count) \(what) still open 20 s after a \(timeoutSeconds) s timeout")
            // Closed at once would be a refusal (say --max-connections), not the timeout.
            let first = closing.firstClose ?? .zero
            #expect(first >= .milliseconds(Int(timeoutSeconds * 1000) - 100), "\(what): the first was closed \(first) after the first was opened")
        }

        @Test(
            "1,000 connections that stop mid-head, twice: others are served, all closed by the timeout, their slots given back",
            arguments: RequestBytes.allProtocols)
        func idleHeads(listenerProtocol: ListenerProtocol) async throws {
            let files = HostileSocket.raiseFileLimit()
            try #require(files >= rlim_t(3 * Self.connections), "RLIMIT_NOFILE \(files): too low for \(Self.connections) connections at both ends")
            try await withLiveGateway([loopback(listenerProtocol)], application: Hello(), limits: Self.limits, logger: .quiet) { addresses in
                let port = addresses[0].port!
                // The second wave fits under --max-connections only if the first gave its slots back.
                for wave in 1...2 {
                    let idle = try await HostileSocket.openIdle(port: port, count: Self.connections, fragment: RequestBytes.partialHead(listenerProtocol))
                    // Service to others goes on while the 1,000 are open.
                    let request = RequestBytes.request(listenerProtocol, path: "/")
                    let idleFDs = idle.fds
                    let (answer, closedMeanwhile) = try await HostileSocket.withConnection(port: port) { fd in
                        try BlockingClient.sendAll(fd, request)
                        let answer = HostileSocket.read(fd, timeout: 30) { $0.containsText("Hello, World!") }
                        return (answer, HostileSocket.countClosed(idleFDs))
                    }
                    #expect(
                        answer.containsText("Hello, World!"),
                        "wave \(wave): no answer to a normal request while \(Self.connections) idle connections were open: \(String(decoding: answer, as: UTF8.self).prefix(200))"
                    )
                    #expect(closedMeanwhile == 0, "wave \(wave): answered only after \(closedMeanwhile) idle connections had been closed")
                    await Self.expectClosedByTimeout(idle, "idle \(listenerProtocol) connections (wave \(wave))")
                }
            }
        }

        @Test(
            "A body that stops half-way while the application reads it is closed by the idle timeout",
            arguments: RequestBytes.allProtocols)
        func stalledBody(listenerProtocol: ListenerProtocol) async throws {
            let log = LogRecorder()
            try await withLiveGateway([loopback(listenerProtocol)], application: Echo(), limits: Self.limits, logger: log.logger()) { addresses in
                // A whole head promising 1,000 bytes of body, then 10 of them.
                let fragment =
                    RequestBytes.head(listenerProtocol, path: "/", contentLength: 1000)
                    + RequestBytes.body(listenerProtocol, Array(repeating: UInt8(ascii: "a"), count: 10), end: false)
                let idle = try await HostileSocket.openIdle(port: addresses[0].port!, count: 50, fragment: fragment)
                await Self.expectClosedByTimeout(idle, "\(listenerProtocol) requests with a stalled body")
            }
            // The server ended them: a client that leaves or stalls is never an error line.
            let errors = log.all.filter { $0.hasPrefix("error ") || $0.hasPrefix("critical ") }
            #expect(errors.isEmpty, "\(listenerProtocol): \(errors.count) error lines, the first: \(errors.first ?? "")")
        }

        @Test("FastCGI: a request begun whose PARAMS never end is closed by the header timeout")
        func fastCGIStalledParams() async throws {
            try await withLiveGateway([loopback(.fastcgi)], application: Hello(), limits: Self.limits, logger: .quiet) { addresses in
                let whole = RequestBytes.head(.fastcgi, path: "/", contentLength: 0)
                // BEGIN_REQUEST and all but the end of the PARAMS stream.
                let idle = try await HostileSocket.openIdle(port: addresses[0].port!, count: 50, fragment: Array(whole.dropLast(8)))
                await Self.expectClosedByTimeout(idle, "stalled FastCGI requests")
            }
        }
    }
}
