import Foundation
import NIOCore
import PosternClient
import PosternCore
import PosternFastCGI
import PosternSCGI
import PosternTestSupport
import PosternUWSGI
import Testing

extension Ops {
    /// `--max-connections`, live: a connection over the limit is told "busy" in its own protocol.
    @Suite(.serialized) struct OverloadTests {
        @Test func connectionsOverTheLimitGet503OrOverloaded() async throws {
            let fastcgiPort = try Ports.free()
            let scgiPort = try Ports.free()
            let uwsgiPort = try Ports.free()
            let server = try await OpsServer.start(
                "overload",
                [
                    "--max-connections", "1", "--fastcgi", "127.0.0.1:\(fastcgiPort)",
                    "--scgi", "127.0.0.1:\(scgiPort)", "--uwsgi", "127.0.0.1:\(uwsgiPort)",
                ], statusPort: false)
            defer { server.process.stop() }
            try await Wait.forPort(fastcgiPort)
            try await Wait.forPort(scgiPort)
            try await Wait.forPort(uwsgiPort)
            // Wait.forPort's probe connections may still be counted for a moment.
            try await Task.sleep(for: .milliseconds(300))
            let holder = Task { await server.get("/sleep?ms=2000") }
            try await Task.sleep(for: .milliseconds(400))

            let busy = await server.get("/hello")
            #expect(busy.status == 503, "HTTP over --max-connections: \(busy)")
            #expect(busy.body.contains("too many connections"))

            let client = try await FastCGIClient.connect(to: .tcp(host: "127.0.0.1", port: fastcgiPort))
            let result = try await client.send(ClientRequest(method: "POST", target: "/hello", body: ByteBuffer(string: "some stdin")))
            #expect(result.protocolStatus == .overloaded, "FastCGI over --max-connections: \(result.protocolStatus)")
            #expect(result.stdout.readableBytes == 0)
            await client.waitForClose()

            // SCGI and uwsgi: the request is read, then answered 503 with Retry-After in the
            // protocol's own framing (CGI-style for SCGI, a status line for uwsgi).
            let post = ClientRequest(method: "POST", target: "/hello", body: ByteBuffer(string: "some body"))
            let scgi = try await SCGIClient.send(post, to: try SocketAddress(ipAddress: "127.0.0.1", port: scgiPort))
            #expect(scgi.status.code == 503, "SCGI over --max-connections: \(scgi.status)")
            #expect(scgi.headers["Retry-After"] == "1")
            let uwsgi = try await UWSGIClient.send(post, to: try SocketAddress(ipAddress: "127.0.0.1", port: uwsgiPort))
            #expect(uwsgi.status.code == 503, "uwsgi over --max-connections: \(uwsgi.status)")
            #expect(uwsgi.headers["Retry-After"] == "1")

            #expect(await holder.value.status == 200, "the connection within the limit is served")
            var after = 0
            for _ in 0..<20 {
                after = await server.get("/hello").status
                if after == 200 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(after == 200, "a slot is free again once the first connection has closed")
        }
    }
}
