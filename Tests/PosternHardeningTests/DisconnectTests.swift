// Clients that vanish mid-body and mid-response: the app's task ends, nothing stays live.
import Foundation
import NIOCore
import Postern
import PosternCore
import PosternTestSupport
import Testing

@Suite("Disconnects: a gone client's request task ends", .serialized)
struct DisconnectTests {
    @Test("disconnect mid-body", arguments: RequestBytes.allProtocols)
    func midBody(gatewayProtocol: GatewayProtocol) async throws {
        let counter = LiveTaskCounter()
        try await withLiveGateway([loopback(gatewayProtocol)], application: TrackedApp(counter: counter)) { addresses in
            let port = addresses[0].port!
            for _ in 0..<20 {
                let fd = try BlockingClient.connectTCP(port: port)
                try BlockingClient.sendAll(fd, RequestBytes.head(gatewayProtocol, path: "/body", contentLength: 1_000_000)
                    + RequestBytes.body(gatewayProtocol, [UInt8](repeating: 0x61, count: 10_000), end: false))
                let started = await counter.wait(timeout: 5) { $0.live >= 1 }
                close(fd)
                #expect(started, "the app never started")
                let ended = await counter.wait(timeout: 10) { $0.live == 0 }
                #expect(ended, "\(counter.live) request task(s) still live after the client left mid-body")
                if !ended || !started { return }
            }
            #expect(counter.total == 20)
        }
    }

    @Test("disconnect mid-response (an endless streamed body)", arguments: RequestBytes.allProtocols)
    func midResponse(gatewayProtocol: GatewayProtocol) async throws {
        let counter = LiveTaskCounter()
        try await withLiveGateway([loopback(gatewayProtocol)], application: TrackedApp(counter: counter)) { addresses in
            let port = addresses[0].port!
            for _ in 0..<20 {
                let fd = try BlockingClient.connectTCP(port: port)
                try BlockingClient.sendAll(fd, RequestBytes.head(gatewayProtocol, path: "/stream", contentLength: 0) + RequestBytes.body(gatewayProtocol, [], end: true))
                let got = HostileSocket.read(fd, atLeast: 200_000, timeout: 10)
                close(fd)
                #expect(got.count >= 200_000, "only \(got.count) bytes of the stream arrived")
                let ended = await counter.wait(timeout: 10) { $0.live == 0 }
                #expect(ended, "\(counter.live) streaming task(s) still live after the client left mid-response")
                if !ended { return }
            }
            #expect(counter.total == 20)
        }
    }
}
