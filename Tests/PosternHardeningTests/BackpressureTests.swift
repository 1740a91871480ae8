// A client that sends and never reads: the server stops reading too, its memory stays bounded.
import Foundation
import NIOCore
import NIOPosix
import PosternCore
import PosternRuntime
import PosternTestSupport
import Testing

extension Hardening {
    @Suite("Backpressure: a client that never reads its response")
    struct BackpressureTests {
        /// What a push without reading came to.
        struct Push: Sendable {
            /// Body bytes the server took (into its socket buffers and beyond).
            var taken = 0
            /// errno of a send that failed other than by blocking (the server reset or closed).
            var failure: Int32?
            /// What the server had answered (read once the push stalled).
            var answer: [UInt8] = []
            /// `measure`'s result when the push stalled.
            var measured = 0
        }

        /// Offers up to 256 MiB of body to the echo app without reading; stops when the server
        /// has taken nothing for 2 s (it pushes back). Then reads some of the echo.
        static func pushWithoutReading(port: Int, listenerProtocol: ListenerProtocol, measure: @escaping @Sendable () -> Int) async throws -> Push {
            try await HostileSocket.withConnection(port: port) { fd in
                try BlockingClient.sendAll(fd, RequestBytes.head(listenerProtocol, path: "/", contentLength: 1 << 30))
                let flags = fcntl(fd, F_GETFL)
                _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
                let chunk = RequestBytes.body(listenerProtocol, [UInt8](repeating: 0x7a, count: 65000), end: false)
                var push = Push()
                var pending = chunk[...]
                var lastProgress = Date()
                let deadline = Date().addingTimeInterval(60)
                while push.taken < 256 << 20, Date() < deadline, Date().timeIntervalSince(lastProgress) < 2 {
                    let n = pending.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    if n > 0 {
                        push.taken += n
                        pending = pending.dropFirst(n)
                        if pending.isEmpty { pending = chunk[...] }
                        lastProgress = Date()
                    } else if errno == EAGAIN || errno == EWOULDBLOCK {
                        usleep(10_000)
                    } else {
                        push.failure = errno
                        break
                    }
                }
                push.measured = measure()
                push.answer = HostileSocket.read(fd, timeout: 10) { $0.count >= 256 * 1024 }
                return push
            }
        }

        @Test(
            "echo: at most tens of MiB taken of 256 MiB offered, RSS bounded, the connection kept",
            arguments: RequestBytes.allProtocols)
        func neverReads(listenerProtocol: ListenerProtocol) async throws {
            let flag = "--\(listenerProtocol)"
            let server = try await PosternProcess.start("backpressure", ports: 1) { ports in
                ["--app", "echo", flag, "127.0.0.1:\(ports[0])", "--log-level", "error"]
            }
            defer { server.stop() }
            let before = server.residentKiB
            let push = try await Self.pushWithoutReading(port: server.ports[0], listenerProtocol: listenerProtocol) { server.residentKiB }
            let grown = push.measured - before
            #expect(before > 0, "cannot read VmRSS")
            #expect(push.failure == nil, "the server dropped a client that only reads slowly: errno \(push.failure ?? 0)")
            #expect(push.taken < 64 << 20, "the server took \(push.taken >> 20) MiB from a client that reads nothing")
            #expect(grown < 64 * 1024, "RSS grew by \(grown) KiB, from \(before) KiB")
            // The server was echoing all along, not refusing: the answer is the body coming back.
            #expect(push.answer.containsText(String(repeating: "z", count: 4096)), "no echo: \(String(decoding: push.answer.prefix(200), as: UTF8.self))")
            #expect(server.process.isRunning)
        }
    }
}
