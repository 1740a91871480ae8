import Foundation
import NIOCore
import NIOPosix
import Postern
import PosternApps
import PosternCore
import PosternEngine
import PosternTestSupport
import Testing

@Suite("HTTP/1.1 listener, live on loopback", .serialized)
struct HTTPListenerTests {
    func environJSON(_ response: ParsedResponse) throws -> [String: String] {
        try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: String])
    }

    @Test("GET builds the environ as a front-end would: decoded PATH_INFO, raw query, no HTTP_PROXY")
    func environ() async throws {
        let server = try await TestServer.start(EnvironDump())
        let raw = try await BlockingClient.exchange(
            port: server.port,
            Array(
                "GET /x%20y/%C3%A9?q=a%20b&z HTTP/1.1\r\nHost: example.test:8080\r\nX-Custom: v1\r\nProxy: http://evil:3128\r\nX_Sneaky: 1\r\nConnection: close\r\n\r\n"
                    .utf8))
        let response = try #require(try ParsedResponse.parseAll(raw).first)
        #expect(response.status == 200)
        #expect(response.header("Content-Type") == "application/json")
        let env = try environJSON(response)
        #expect(env["REQUEST_METHOD"] == "GET")
        #expect(env["SCRIPT_NAME"] == "")
        #expect(env["PATH_INFO"] == "/x y/é")
        #expect(env["QUERY_STRING"] == "q=a%20b&z")
        #expect(env["REQUEST_URI"] == "/x%20y/%C3%A9?q=a%20b&z")
        #expect(env["SERVER_NAME"] == "example.test")
        #expect(env["SERVER_PORT"] == String(server.port))
        #expect(env["REMOTE_ADDR"] == "127.0.0.1")
        #expect(env["HTTP_X_CUSTOM"] == "v1")
        #expect(env["HTTP_PROXY"] == nil)
        #expect(env["HTTP_X_SNEAKY"] == nil)
        #expect(env["SERVER_PROTOCOL"] == "HTTP/1.1")
        #expect(env["gateway.url_scheme"] == "http")
        try await server.stop()
    }

    @Test("keep-alive: pipelined requests on one connection are answered in order")
    func keepAlive() async throws {
        let server = try await TestServer.start(EnvironDump())
        let request = "GET /one HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        let responses = try ParsedResponse.parseAll(try await BlockingClient.exchange(port: server.port, Array(request.utf8)))
        #expect(responses.count == 2)
        let first = try environJSON(responses[0])
        let second = try environJSON(responses[1])
        #expect(first["PATH_INFO"] == "/one")
        #expect(second["PATH_INFO"] == "/two")
        #expect(first["REMOTE_PORT"] == second["REMOTE_PORT"])
        #expect(responses[1].header("Connection") == "close")
        try await server.stop()
    }

    @Test("pipelined requests with bodies, chunked and by length, are answered in order on one connection")
    func pipelinedBodies() async throws {
        let server = try await TestServer.start(Echo())
        var request = ""
        var bodies: [String] = []
        for index in 0..<60 {
            let body = "request \(index) " + String(repeating: "x", count: index * 7)
            bodies.append(body)
            let close = index == 59 ? "Connection: close\r\n" : ""
            if index % 2 == 0 {
                request += "POST /\(index) HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.utf8.count)\r\n\(close)\r\n\(body)"
            } else {
                let hex = String(body.utf8.count, radix: 16)
                request += "POST /\(index) HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\(close)\r\n\(hex)\r\n\(body)\r\n0\r\n\r\n"
            }
        }
        let responses = try ParsedResponse.parseAll(try await BlockingClient.exchange(port: server.port, Array(request.utf8)))
        #expect(responses.count == bodies.count)
        #expect(responses.map { String(decoding: $0.body, as: UTF8.self) } == Array(bodies.prefix(responses.count)))
        #expect(responses.allSatisfy { $0.status == 200 })
        try await server.stop()
    }

    @Test("an answer that leaves the body unread: the rest is drained and the next request served")
    func answerBeforeTheBody() async throws {
        let server = try await TestServer.start(EnvironDump())
        let body = String(repeating: "b", count: 300_000)
        let request =
            "POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
            + "GET /second HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        let responses = try ParsedResponse.parseAll(try await BlockingClient.exchange(port: server.port, Array(request.utf8)))
        #expect(responses.count == 2)
        #expect(try responses.map { try environJSON($0)["PATH_INFO"] } == ["/first", "/second"])
        try await server.stop()
    }

    @Test("a body the application left unread still counts against --max-body-bytes: over it, the connection closes")
    func unreadBodyOverTheLimit() async throws {
        var limits = GatewayLimits()
        limits.maxBodyBytes = 1000
        let server = try await TestServer.start(EnvironDump(), limits: limits)
        let fd = try BlockingClient.connectTCP(port: server.port)
        defer { close(fd) }
        try BlockingClient.sendAll(fd, Array("POST /first HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n".utf8))
        // The answer goes out while the body is still coming; the rest of it is over the limit.
        try await Task.sleep(for: .milliseconds(200))
        let big = String(repeating: "x", count: 1500)
        try BlockingClient.sendAll(
            fd, Array("\(String(big.count, radix: 16))\r\n\(big)\r\n0\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".utf8))
        let responses = try ParsedResponse.parseAll(BlockingClient.readAll(fd))
        #expect(try responses.map { try environJSON($0)["PATH_INFO"] } == ["/first"], "the connection served on past the limit")
        try await server.stop()
    }

    @Test("a client that goes away cancels its request's application")
    func clientGoneCancelsTheApplication() async throws {
        let (cancelled, continuation) = AsyncStream<Void>.makeStream()
        let server = try await TestServer.start(
            ApplicationFunction { _ in
                do {
                    try await Task.sleep(for: .seconds(30))
                } catch {
                    continuation.yield()
                    throw error
                }
                return Response(status: .ok, body: .init(string: "late"))
            })
        let fd = try BlockingClient.connectTCP(port: server.port)
        try BlockingClient.sendAll(fd, Array("GET /wait HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
        try await Task.sleep(for: .milliseconds(200))
        close(fd)
        let noticed = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                var iterator = cancelled.makeAsyncIterator()
                return await iterator.next() != nil
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(5))
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        #expect(noticed, "the application ran on after its client had gone")
        try await server.stop()
    }

    @Test("a chunked request body streams in, and a body of unknown length goes out chunked")
    func chunked() async throws {
        let server = try await TestServer.start(Echo())
        let request =
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Type: text/x-test\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        let response = try #require(try ParsedResponse.parseAll(try await BlockingClient.exchange(port: server.port, Array(request.utf8))).first)
        #expect(response.status == 200)
        #expect(response.header("Transfer-Encoding") == "chunked")
        #expect(response.header("Content-Type") == "text/x-test")
        #expect(String(decoding: response.body, as: UTF8.self) == "hello world")
        try await server.stop()
    }

    @Test("1 MiB echo comes back identical, framed by Content-Length")
    func largeEcho() async throws {
        let server = try await TestServer.start(Echo())
        var generator = SystemRandomNumberGenerator()
        let payload = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let head = Array("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \(payload.count)\r\nConnection: close\r\n\r\n".utf8)
        let response = try #require(try ParsedResponse.parseAll(try await BlockingClient.exchange(port: server.port, head + payload)).first)
        #expect(response.status == 200)
        #expect(response.header("Content-Length") == String(payload.count))
        let identical = response.body == payload  // compared outside #expect: a failure must not print megabytes
        #expect(identical, "the body differs from the payload")
        try await server.stop()
    }

    @Test("a malformed request gets 400 and the server goes on serving")
    func badRequest() async throws {
        let server = try await TestServer.start(Hello())
        let bad = try await BlockingClient.exchange(port: server.port, "THIS IS NOT HTTP\r\n\r\n")
        #expect(bad.hasPrefix("HTTP/1.1 400"))
        let badTarget = try await BlockingClient.exchange(port: server.port, "GET no-slash HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(badTarget.hasPrefix("HTTP/1.1 400"))
        let good = try await BlockingClient.exchange(port: server.port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        #expect(good.hasPrefix("HTTP/1.1 200"))
        #expect(good.hasSuffix("Hello, World!\n"))
        try await server.stop()
    }

    @Test("Transfer-Encoding together with Content-Length is refused (request smuggling)")
    func smuggling() async throws {
        let server = try await TestServer.start(Echo())
        let response = try await BlockingClient.exchange(
            port: server.port, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 400"))
        #expect(!response.contains("200 OK"))
        try await server.stop()
    }

    @Test("a body over the limit gets 413, declared or chunked")
    func tooLarge() async throws {
        var limits = GatewayLimits()
        limits.maxBodyBytes = 1000
        let server = try await TestServer.start(Echo(), limits: limits)
        let declared = try await BlockingClient.exchange(port: server.port, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n")
        #expect(declared.hasPrefix("HTTP/1.1 413"))
        let big = String(repeating: "x", count: 1500)
        let chunked = try await BlockingClient.exchange(
            port: server.port, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\(String(big.count, radix: 16))\r\n\(big)\r\n0\r\n\r\n")
        #expect(!chunked.contains(big))
        let stillServing = try await BlockingClient.exchange(
            port: server.port, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
        #expect(stillServing.hasSuffix("abc"))
        try await server.stop()
    }

    @Test("HEAD gets the head only; Expect: 100-continue gets 100 first")
    func headAndContinue() async throws {
        let server = try await TestServer.start(Echo())
        let head = try await BlockingClient.exchange(port: server.port, "HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        #expect(head.hasPrefix("HTTP/1.1 200"))
        #expect(head.hasSuffix("\r\n\r\n"))
        let expect = try await BlockingClient.exchange(
            port: server.port, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nok")
        #expect(expect.hasPrefix("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK"))
        #expect(expect.hasSuffix("ok"))
        try await server.stop()
    }

    @Test("an app that throws gets a plain 500 without internals, and the server survives")
    func appError() async throws {
        struct Secret: Error {}
        let server = try await TestServer.start(
            ApplicationFunction { environ in
                if environ.pathInfo == "/boom" { throw Secret() }
                return .text("fine")
            })
        let boom = try await BlockingClient.exchange(port: server.port, "GET /boom HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        #expect(boom.hasPrefix("HTTP/1.1 500"))
        #expect(!boom.contains("Secret"))
        let fine = try await BlockingClient.exchange(port: server.port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        #expect(fine.hasSuffix("fine"))
        try await server.stop()
    }

    @Test("a response header with CR LF is never forwarded")
    func headerInjection() async throws {
        let server = try await TestServer.start(
            ApplicationFunction { _ in
                Response(status: .ok, headers: ["Content-Type": "text/plain", "X-User": "a\r\nSet-Cookie: admin=1"], body: .init(string: "x"))
            })
        let response = try await BlockingClient.exchange(port: server.port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 500"))
        #expect(!response.contains("admin=1"))
        try await server.stop()
    }

    @Test("with the validator on, a contract violation becomes a 500")
    func validator() async throws {
        let server = try await TestServer.start(Validator(ApplicationFunction { _ in Response(status: .ok, body: .init(string: "no type")) }))
        let response = try await BlockingClient.exchange(port: server.port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 500"))
        try await server.stop()
    }

    @Test("graceful shutdown lets an in-flight request finish, then refuses new connections")
    func gracefulShutdown() async throws {
        let server = try await TestServer.start(
            ApplicationFunction { _ in
                try await Task.sleep(for: .milliseconds(500))
                return .text("finished")
            })
        let port = server.port
        async let inFlight = BlockingClient.exchange(port: port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        try await Task.sleep(for: .milliseconds(150))
        try await server.stop()
        let response = try await inFlight
        #expect(response.hasPrefix("HTTP/1.1 200"))
        #expect(response.hasSuffix("finished"))
        #expect(throws: (any Error).self) { _ = try BlockingClient.connectTCP(port: port) }
    }

    @Test("unix socket listener: created with mode 0660, stale file replaced, served")
    func unixSocket() async throws {
        let path = "/tmp/postern-test-\(getpid()).sock"
        // A stale socket file from a crashed run.
        let stale = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(stale, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        close(stale)
        let server = try await TestServer.start(Hello(), listeners: [ListenerSpec(.http, .unix(path: path))])
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o660)
        try await server.stop()
    }

    @Test("the allow-list closes connections from peers not on it")
    func allowList() async throws {
        let denied = try await TestServer.start(
            Hello(), listeners: [ListenerSpec(.http, .tcp(host: "127.0.0.1", port: 0), allow: try AllowList(parsing: "10.1.2.3"))])
        let refused = try await BlockingClient.exchange(port: denied.port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        #expect(refused.isEmpty)
        try await denied.stop()
        let allowed = try await TestServer.start(
            Hello(), listeners: [ListenerSpec(.http, .tcp(host: "127.0.0.1", port: 0), allow: try AllowList(parsing: "10.1.2.3, 127.0.0.0/8"))])
        let served = try await BlockingClient.exchange(port: allowed.port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        #expect(served.hasSuffix("Hello, World!\n"))
        try await allowed.stop()
    }
}

@Suite("Closing never drops response bytes")
struct FlushBeforeCloseTests {
    @Test("a large response to a slow reader arrives whole before the connection closes")
    func slowReaderGetsEverything() async throws {
        let size = 16 << 20
        let body = ByteBuffer(repeating: UInt8(ascii: "x"), count: size)
        let server = try await TestServer.start(
            ApplicationFunction { _ in
                Response(status: .ok, headers: ["Content-Type": "application/octet-stream"], body: ResponseBody(body))
            })
        let port = server.port
        let received = try await NIOThreadPool.singleton.runIfActive { () -> Int in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var small: Int32 = 4096
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            try BlockingClient.sendAll(fd, Array("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".utf8))
            usleep(1_000_000)  // the server has handed everything over and asked to close by now
            return BlockingClient.readAll(fd).count
        }
        #expect(received > size)
        #expect(received - size < 200, "head of \(received - size) bytes?")
        try await server.stop()
    }
}
