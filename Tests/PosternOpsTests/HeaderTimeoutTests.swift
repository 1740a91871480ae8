import Foundation
import NIOCore
import PosternClient
import PosternCore
import PosternFastCGI
import PosternTestSupport
import Testing

extension Ops {
    /// `--header-timeout` for HTTP heads and FastCGI params, live: a client that trickles its head
    /// is cut off at the deadline; a slow application or an idle keep-alive connection is not.
    @Suite(.serialized) struct HeaderTimeoutTests {
        /// Sends `prefix`, then one byte of `trickle` every 200 ms; the seconds until the server
        /// closed the connection, or nil if it was still open after `limit` seconds.
        static func secondsUntilClosed(port: Int, prefix: String, trickle: String, limit: Double) async throws -> Double? {
            try await OpsServer.pool.runIfActive {
                let fd = try BlockingClient.connectTCP(port: port)
                defer { close(fd) }
                let start = Date()
                try BlockingClient.sendAll(fd, Array(prefix.utf8))
                var pending = Array(trickle.utf8)[...]
                while Date().timeIntervalSince(start) < limit {
                    var byte: UInt8 = 0
                    let got = recv(fd, &byte, 1, Int32(MSG_DONTWAIT))
                    if got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { return Date().timeIntervalSince(start) }
                    if let next = pending.popFirst() {
                        var value = next
                        if send(fd, &value, 1, Int32(MSG_NOSIGNAL)) < 0 { return Date().timeIntervalSince(start) }
                    }
                    usleep(200_000)
                }
                return nil
            }
        }

        @Test func httpHeadTricklingPastTheTimeoutIsClosed() async throws {
            let server = try await OpsServer.start("head-timeout", ["--header-timeout", "1", "--idle-timeout", "5"], statusPort: false)
            defer { server.process.stop() }
            let closedAfter = try await Self.secondsUntilClosed(
                port: server.port, prefix: "GET /hello HTTP/1.1\r\nHost: t\r\n", trickle: String(repeating: "X-Slow: 1\r\n", count: 3), limit: 4)
            #expect(closedAfter != nil, "a trickled head held the connection past --header-timeout 1")
            if let closedAfter { #expect(closedAfter > 0.8 && closedAfter < 2.5, "closed after \(closedAfter) s") }
            // A head sent whole is served even when the application takes longer than the timeout.
            #expect(await server.get("/sleep?ms=1500").status == 200)
        }

        @Test func httpKeepAliveOutlivesTheHeaderTimeout() async throws {
            let server = try await OpsServer.start("head-timeout-keepalive", ["--header-timeout", "1", "--idle-timeout", "5"], statusPort: false)
            defer { server.process.stop() }
            let responses = try await OpsServer.pool.runIfActive {
                let fd = try BlockingClient.connectTCP(port: server.port)
                defer { close(fd) }
                try BlockingClient.sendAll(fd, Array("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n".utf8))
                usleep(1_800_000)  // idle between requests for longer than --header-timeout
                try BlockingClient.sendAll(fd, Array("GET /pid HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".utf8))
                return try ParsedResponse.parseAll(BlockingClient.readAll(fd)).map(\.status)
            }
            #expect(responses == [200, 200])
        }

        @Test func fastCGIParamsTricklingPastTheTimeoutIsClosed() async throws {
            let fastcgiPort = try Ports.free()
            let server = try await OpsServer.start(
                "params-timeout", ["--header-timeout", "1", "--idle-timeout", "5", "--fastcgi", "127.0.0.1:\(fastcgiPort)"], statusPort: false)
            defer { server.process.stop() }
            try await Wait.forPort(fastcgiPort)
            // BEGIN_REQUEST (responder, KEEP_CONN) for id 1, then one PARAMS record and never the empty one.
            let begin: [UInt8] = [1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
            let pair: [UInt8] = [11, 3] + Array("REQUEST_URIGET".utf8).prefix(14)
            let params: [UInt8] = [1, 4, 0, 1, 0, UInt8(pair.count), 0, 0] + pair
            let trickling = try await FastCGIClient.connect(to: .tcp(host: "127.0.0.1", port: fastcgiPort))
            let start = ContinuousClock.now
            try await trickling.writeRaw(ByteBuffer(bytes: begin + params))
            let closed = Task { await trickling.waitForClose() }
            let watchdog = Task {
                try? await Task.sleep(for: .seconds(4))
                await trickling.close()
            }
            await closed.value
            watchdog.cancel()
            let elapsed = ContinuousClock.now - start
            #expect(elapsed > .milliseconds(800) && elapsed < .milliseconds(2500), "closed after \(elapsed) (4 s: never)")

            // Params sent whole: the application may take longer than the timeout.
            let client = try await FastCGIClient.connect(to: .tcp(host: "127.0.0.1", port: fastcgiPort))
            let result = try await client.send(ClientRequest(target: "/sleep?ms=1500"))
            #expect(try result.response().status.code == 200)
            await client.close()
        }
    }
}
