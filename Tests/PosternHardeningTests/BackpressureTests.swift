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
                var push = pushUntilStalled(fd, RequestBytes.body(listenerProtocol, [UInt8](repeating: 0x7a, count: 65000), end: false))
                push.measured = measure()
                push.answer = HostileSocket.read(fd, timeout: 10) { $0.count >= 256 * 1024 }
                return push
            }
        }

        /// Sends `chunk` again and again (non-blocking) until 256 MiB are taken, 60 s have
        /// passed, or the server has taken nothing for 2 s.
        static func pushUntilStalled(_ fd: Int32, _ chunk: [UInt8]) -> Push {
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
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
            return push
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

        /// FastCGI answers management records itself (FCGI_GET_VALUES, §4.1), with no
        /// application to slow it: a client that sends them and never reads the answers must
        /// find the server's reads stopped once its writes are queued, not a queue that grows.
        @Test("FastCGI: GET_VALUES sent on and on, no answer read: the server stops reading")
        func getValuesNeverRead() async throws {
            let server = try await PosternProcess.start("backpressure-fcgi", ports: 1) { ports in
                ["--app", "hello", "--fastcgi", "127.0.0.1:\(ports[0])", "--log-level", "error"]
            }
            defer { server.stop() }
            let before = server.residentKiB
            let name = Array("FCGI_MPXS_CONNS".utf8)
            let content = [UInt8(name.count), 0] + name
            // Version 1, FCGI_GET_VALUES (9), request id 0, the content's length, no padding.
            let record = [1, 9, 0, 0, 0, UInt8(content.count), 0, 0] + content
            let chunk = Array([[UInt8]](repeating: record, count: 2000).joined())
            let push = try await HostileSocket.withConnection(port: server.ports[0]) { fd in
                var push = Self.pushUntilStalled(fd, chunk)
                push.measured = server.residentKiB
                push.answer = HostileSocket.read(fd, timeout: 10) { $0.count >= 64 * 1024 }
                return push
            }
            let grown = push.measured - before
            #expect(push.failure == nil, "the server dropped the client: errno \(push.failure ?? 0)")
            #expect(push.taken < 64 << 20, "the server took \(push.taken >> 20) MiB of records whose answers nobody read")
            #expect(grown < 64 * 1024, "RSS grew by \(grown) KiB, from \(before) KiB")
            // The answers were being written all along: GET_VALUES_RESULT (type 10) records.
            #expect(push.answer.count >= 8 && push.answer[0] == 1 && push.answer[1] == 10, "no GET_VALUES_RESULT: \(push.answer.prefix(16))")
            #expect(server.process.isRunning)
        }
    }
}
