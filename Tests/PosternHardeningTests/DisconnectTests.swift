// Clients that vanish mid-body and mid-response: the app's task ends, nothing stays live.
import Foundation
import Logging
import NIOCore
import Postern
import PosternCore
import PosternTestSupport
import Testing

extension Hardening {
    @Suite("Disconnects: a gone client's request task ends")
    struct DisconnectTests {
        static let rounds = 20

        @Test("disconnect mid-body", arguments: RequestBytes.allProtocols)
        func midBody(listenerProtocol: ListenerProtocol) async throws {
            let counter = LiveTaskCounter()
            let errors = LogRecorder()
            try await withLiveGateway([loopback(listenerProtocol)], application: TrackedApp(counter: counter), logger: errors.logger(level: .error)) {
                addresses in
                let port = addresses[0].port!
                let request =
                    RequestBytes.head(listenerProtocol, path: "/body", contentLength: 1_000_000)
                    + RequestBytes.body(listenerProtocol, [UInt8](repeating: 0x61, count: 10_000), end: false)
                for round in 1...Self.rounds {
                    let fd = try await HostileSocket.onThread {
                        let fd = try HostileSocket.connect(port: port)
                        try BlockingClient.sendAll(fd, request)
                        return fd
                    }
                    let started = await counter.wait(timeout: 5) { $0.total == round && $0.live == 1 }
                    close(fd)
                    #expect(started, "the app never started (round \(round))")
                    let ended = await counter.wait(timeout: 10) { $0.live == 0 }
                    #expect(ended, "\(counter.live) request task(s) still live after the client left mid-body")
                    if !ended || !started { return }
                }
                #expect(counter.total == Self.rounds)
                #expect(counter.completed == 0, "\(counter.completed) request(s) read a whole body that was never sent")
            }
            // A client that leaves is the client's doing: no error-level line, on any protocol.
            #expect(errors.all.isEmpty, "logged as errors: \(errors.all.prefix(3))")
        }

        @Test("disconnect mid-response (an endless streamed body)", arguments: RequestBytes.allProtocols)
        func midResponse(listenerProtocol: ListenerProtocol) async throws {
            let counter = LiveTaskCounter()
            let errors = LogRecorder()
            try await withLiveGateway([loopback(listenerProtocol)], application: TrackedApp(counter: counter), logger: errors.logger(level: .error)) {
                addresses in
                let port = addresses[0].port!
                let request = RequestBytes.request(listenerProtocol, path: "/stream")
                for round in 1...Self.rounds {
                    let got = try await HostileSocket.withConnection(port: port) { fd in
                        try BlockingClient.sendAll(fd, request)
                        return HostileSocket.read(fd, timeout: 10) { $0.count >= 200_000 }.count
                    }
                    #expect(got >= 200_000, "only \(got) bytes of the stream arrived (round \(round))")
                    let ended = await counter.wait(timeout: 10) { $0.live == 0 }
                    #expect(ended, "\(counter.live) streaming task(s) still live after the client left mid-response")
                    if !ended || got < 200_000 { return }
                }
                #expect(counter.total == Self.rounds)
                #expect(counter.completed == 0, "\(counter.completed) endless stream(s) reported complete")
            }
            #expect(errors.all.isEmpty, "logged as errors: \(errors.all.prefix(3))")
        }
    }
}
