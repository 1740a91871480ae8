// Slow-loris on every protocol: 1,000 idle half-sent heads neither block others nor stay open.
import Foundation
import NIOCore
import Postern
import PosternApps
import PosternCore
import PosternTestSupport
import Testing

@Suite("Slow-loris: idle half-open connections", .serialized)
struct SlowLorisTests {
    static let connections = 1000

    static var limits: GatewayLimits {
        var limits = GatewayLimits()
        limits.headerTimeoutSeconds = 1
        limits.idleTimeoutSeconds = 1
        limits.maxConnections = connections + 50
        return limits
    }

    @Test("1,000 connections that stop mid-head: others are served, all closed by the timeout", arguments: RequestBytes.allProtocols)
    func idleHeads(gatewayProtocol: GatewayProtocol) async throws {
        HostileSocket.raiseFileLimit(to: 8192)
        try await withLiveGateway([loopback(gatewayProtocol)], application: Hello(), limits: Self.limits) { addresses in
            let port = addresses[0].port!
            let idle = try await HostileSocket.openIdle(port: port, count: Self.connections, fragment: RequestBytes.partialHead(gatewayProtocol))
            // Service to others goes on while the 1,000 are open.
            let request = RequestBytes.head(gatewayProtocol, path: "/", contentLength: 0) + RequestBytes.body(gatewayProtocol, [], end: true)
            let answer = try await HostileSocket.withConnection(port: port) { fd in
                try BlockingClient.sendAll(fd, request)
                return HostileSocket.read(fd, atLeast: 1, timeout: 5)
            }
            #expect(!answer.isEmpty, "no answer to a normal request while \(Self.connections) idle connections were open")
            let stillOpen = await HostileSocket.waitUntilClosedByServer(idle, timeout: 20)
            #expect(stillOpen == 0, "\(stillOpen) of \(Self.connections) idle \(gatewayProtocol) connections still open 20 s after a 1 s timeout")
        }
    }

    @Test("FastCGI: a request begun whose PARAMS never end is closed by the header timeout")
    func fastCGIStalledParams() async throws {
        try await withLiveGateway([loopback(.fastcgi)], application: Hello(), limits: Self.limits) { addresses in
            let whole = RequestBytes.head(.fastcgi, path: "/", contentLength: 0)
            // BEGIN_REQUEST and all but the end of the PARAMS stream.
            let idle = try await HostileSocket.openIdle(port: addresses[0].port!, count: 50, fragment: Array(whole.dropLast(8)))
            let stillOpen = await HostileSocket.waitUntilClosedByServer(idle, timeout: 20)
            #expect(stillOpen == 0, "\(stillOpen) of 50 stalled FastCGI requests still open")
        }
    }
}
