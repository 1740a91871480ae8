// A client that sends and never reads: the server stops reading too, its memory stays bounded.
import Foundation
import NIOCore
import NIOPosix
import PosternCore
import PosternTestSupport
import Testing

@Suite("Backpressure: a client that never reads its response", .serialized)
struct BackpressureTests {
    /// Offers up to 256 MiB to the echo app without reading; returns how much the server took.
    static func pushWithoutReading(port: Int, head: [UInt8]) async throws -> Int {
        try await HostileSocket.withConnection(port: port) { fd in
            try BlockingClient.sendAll(fd, head)
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            let chunk = [UInt8](repeating: 0x7a, count: 65536)
            var sent = 0
            var lastProgress = Date()
            let deadline = Date().addingTimeInterval(30)
            // Stop when the server has taken nothing for 2 s (it pushes back) or after 256 MiB.
            while sent < 256 << 20, Date() < deadline, Date().timeIntervalSince(lastProgress) < 2 {
                let n = chunk.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n > 0 {
                    sent += n
                    lastProgress = Date()
                } else {
                    usleep(10_000)
                }
            }
            return sent
        }
    }

    @Test("HTTP and SCGI echo: at most tens of MiB taken of 256 MiB offered, RSS bounded",
          arguments: [GatewayProtocol.http, .scgi])
    func neverReads(gatewayProtocol: GatewayProtocol) async throws {
        let port = try Ports.free()
        let flag = gatewayProtocol == .http ? "--http" : "--scgi"
        let server = try await PosternProcess.start("backpressure", arguments: ["--app", "echo", flag, "127.0.0.1:\(port)", "--log-level", "error"], waitFor: port)
        defer { server.stop() }
        let before = server.residentKiB
        let head = RequestBytes.head(gatewayProtocol, path: "/", contentLength: 1 << 30)
        let taken = try await Self.pushWithoutReading(port: port, head: head)
        let after = server.residentKiB
        #expect(before > 0 && after > 0, "cannot read VmRSS")
        #expect(taken < 64 << 20, "the server took \(taken >> 20) MiB from a client that reads nothing")
        #expect(after - before < 64 * 1024, "RSS grew from \(before) KiB to \(after) KiB")
        #expect(server.process.isRunning)
    }
}
