import NIOCore
import Postern
import PosternApps
import PosternCLI
import PosternClient
import PosternCore
import PosternTestSupport
import Testing

@testable import PosternUWSGI

#if canImport(Glibc)
import Glibc
#endif

/// uwsgi through a real GatewayServer on loopback: the client, raw bytes, limits, sockets.
@Suite struct UWSGILiveTests {
    @Test func helloThroughTheClient() async throws {
        try await withLiveGateway([loopback(.uwsgi)], application: Hello()) { addresses in
            let response = try await UWSGIClient.send(ClientRequest(target: "/"), to: addresses[0])
            #expect(response.status.code == 200)
            #expect(response.headers["Content-Type"] == "text/plain; charset=utf-8")
            #expect(response.body.text == "Hello, World!\n")
        }
    }

    /// The exact bytes on the wire: a hand-built packet in, an HTTP status line response out.
    @Test func responseStartsWithAnHTTPStatusLine() async throws {
        try await withLiveGateway([loopback(.uwsgi)], application: Hello()) { addresses in
            let reply = try await RawClient.exchange(UWSGIDecoderTests.handBuilt, with: addresses[0], halfClose: false)
            #expect(reply.text == "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 14\r\n\r\nHello, World!\n")
        }
    }

    @Test func environCarriesTheVarsAsSent() async throws {
        try await withLiveGateway([loopback(.uwsgi)], application: EnvironDump()) { addresses in
            var request = ClientRequest(
                method: "POST", target: "/a/b?x=1", headers: [("Content-Type", "text/plain"), ("X-Trace", "t1"), ("Proxy", "http://evil")])
            request.body = ByteBuffer(string: "hello")
            let environ = try CrossProtocolEnviron.parseEnvironDump(try await UWSGIClient.send(request, to: addresses[0]).body)
            #expect(environ["REQUEST_METHOD"] == "POST")
            #expect(environ["PATH_INFO"] == "/a/b")
            #expect(environ["QUERY_STRING"] == "x=1")
            #expect(environ["CONTENT_LENGTH"] == "5")
            #expect(environ["CONTENT_TYPE"] == "text/plain")
            #expect(environ["HTTP_X_TRACE"] == "t1")
            #expect(environ["HTTP_PROXY"] == nil)
            #expect(environ["gateway.protocol"] == "uwsgi")
        }
    }

    @Test func echoOf16MiBComesBackIdentical() async throws {
        try await withLiveGateway([loopback(.uwsgi)], application: Echo()) { addresses in
            let payload = EchoPayload.make(bytes: 16 << 20)
            let clock = ContinuousClock()
            let start = clock.now
            let response = try await UWSGIClient.send(
                ClientRequest(method: "PUT", target: "/echo", headers: [("Content-Type", "application/octet-stream")], body: payload),
                to: addresses[0])
            print("uwsgi 16 MiB echo: \(clock.now - start)")
            #expect(response.status.code == 200)
            #expect(response.body.readableBytes == payload.readableBytes)
            let identical = response.body == payload  // compared outside #expect: a failure must not print megabytes
            #expect(identical, "the body differs from the payload")
        }
    }

    @Test func malformedRequestsCloseOnlyTheirOwnConnection() async throws {
        let recorder = LogRecorder()
        let cases = UWSGIMalformedCase.all
        try await withLiveGateway([loopback(.uwsgi)], application: BodyCount(), logger: recorder.logger()) { addresses in
            let good = UWSGIDecoderTests.handBuilt
            let result = try await IsolationCheck.run(good: good, split: 10, malformed: cases.map(\.bytes), address: addresses[0])
            for (testCase, reply) in zip(cases, result.malformedReplies) {
                #expect(reply.readableBytes == 0, "\(testCase.name): the server answered \(reply.text)")
                #expect(recorder.contains(testCase.error.description), "\(testCase.name): reason not logged")
            }
            #expect(recorder.contains("modifier1 5 is not supported"))
            #expect(result.goodReply.text.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(result.goodReply.text.hasSuffix("received 2"))
        }
    }

    /// `--uwsgi-max-vars` reaches the limits and the listener refuses a larger block.
    @Test func uwsgiMaxVarsOptionIsApplied() async throws {
        let options = try ServeOptions.parse(["--uwsgi-max-vars", "4096"])
        #expect(options.limits.maxUWSGIVarsBytes == 4096)
        #expect(throws: (any Error).self) { try ServeOptions.parse(["--uwsgi-max-vars", "65536"]).validate() }
        #expect(try ServeOptions.parse([]).limits.maxUWSGIVarsBytes == 65535)

        let recorder = LogRecorder()
        try await withLiveGateway([loopback(.uwsgi)], application: Hello(), limits: options.limits, logger: recorder.logger()) { addresses in
            let big = ClientRequest(target: "/", headers: [("X-Pad", String(repeating: "p", count: 5000))])
            await #expect(throws: (any Error).self) { try await UWSGIClient.send(big, to: addresses[0]) }
            #expect(recorder.contains("exceeds the limit of 4096 (--uwsgi-max-vars)"))
            let small = try await UWSGIClient.send(ClientRequest(target: "/"), to: addresses[0])
            #expect(small.status.code == 200)
        }
    }

    @Test func unixSocketListenerWithMode0660() async throws {
        let path = "/tmp/postern-uwsgi-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        try await withLiveGateway([ListenerSpec(.uwsgi, .unix(path: path))], application: EnvironDump()) { _ in
            var info = stat()
            #expect(stat(path, &info) == 0)
            #expect(info.st_mode & 0o777 == 0o660)
            let target = try ClientTarget(parsing: "uwsgi+unix://\(path)/some/path?q=1")
            let response = try await ProtocolClients.send(ClientRequest(target: target.requestTarget), to: target)
            let environ = try CrossProtocolEnviron.parseEnvironDump(response.body)
            #expect(environ["PATH_INFO"] == "/some/path")
            #expect(environ["QUERY_STRING"] == "q=1")
        }
        #expect(access(path, F_OK) != 0, "the socket file is removed on stop")
    }

    /// `fd:N`: a socket bound and listening before the server starts (as a process manager
    /// hands it over) is served.
    @Test func inheritedListeningDescriptor() async throws {
        let fd = try ListeningSocket.makeLoopback()
        try await withLiveGateway([ListenerSpec(.uwsgi, .fd(fd))], application: Hello()) { addresses in
            let response = try await UWSGIClient.send(ClientRequest(target: "/"), to: addresses[0])
            #expect(response.body.text == "Hello, World!\n")
        }
    }

    @Test func allowListRefusesOtherPeers() async throws {
        var allow = AllowList()
        try allow.add("192.0.2.0/24")
        try await withLiveGateway([ListenerSpec(.uwsgi, .tcp(host: "127.0.0.1", port: 0), allow: allow)], application: Hello()) { addresses in
            let reply = try await RawClient.exchange(UWSGIDecoderTests.handBuilt, with: addresses[0], halfClose: false)
            #expect(reply.readableBytes == 0)
        }
    }
}

/// A listening TCP socket on 127.0.0.1, made with the C API (what a process manager passes on).
enum ListeningSocket {
    static func makeLoopback() throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            close(fd)
            throw TestFailure("bind/listen failed")
        }
        return fd
    }
}
