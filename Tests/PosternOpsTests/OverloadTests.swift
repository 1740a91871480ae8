import Foundation
import NIOCore
import PosternCore
import PosternFastCGI
import PosternTestSupport
import Testing

/// `--max-connections`, live: a connection over the limit is told "busy" in its own protocol.
@Suite(.serialized) struct OverloadTests {
    @Test func connectionsOverTheLimitGet503OrOverloaded() async throws {
        let fastcgiPort = try Ports.free()
        let server = try await OpsServer.start("overload", ["--max-connections", "1", "--fastcgi", "127.0.0.1:\(fastcgiPort)"], statusPort: false)
        defer { server.process.stop() }
        try await Wait.forPort(fastcgiPort)
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
