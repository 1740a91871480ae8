import NIOCore
import Postern
import PosternApps
import PosternCLI
import PosternClient
import PosternCore
import PosternEngine
import PosternTestSupport
import Testing

@testable import PosternSCGI

#if canImport(Glibc)
import Glibc
#endif

/// SCGI through a real GatewayServer on loopback: the client, raw bytes, limits, sockets.
@Suite struct SCGILiveTests {
    @Test func helloThroughTheClient() async throws {
        try await withLiveGateway([loopback(.scgi)], application: Hello()) { addresses in
            let response = try await SCGIClient.send(ClientRequest(target: "/"), to: addresses[0])
            #expect(response.status.code == 200)
            #expect(response.headers["Content-Type"] == "text/plain; charset=utf-8")
            #expect(response.body.text == "Hello, World!\n")
        }
    }

    /// The exact bytes on the wire: the spec's request in, a CGI-style response out, then close.
    @Test func responseIsCGIStyleByteForByte() async throws {
        try await withLiveGateway([loopback(.scgi)], application: Hello()) { addresses in
            let reply = try await RawClient.exchange(SCGIDecoderTests.specExample, with: addresses[0], halfClose: false)
            #expect(reply.text == "Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 14\r\n\r\nHello, World!\n")
        }
    }

    @Test func environCarriesTheHeadersAsSent() async throws {
        try await withLiveGateway([loopback(.scgi)], application: EnvironDump()) { addresses in
            var request = ClientRequest(method: "POST", target: "/a/b?x=1", headers: [("Content-Type", "text/plain"), ("X-Trace", "t1")])
            request.body = ByteBuffer(string: "hello")
            request.extraVariables = [("HTTP_PROXY", "http://evil")]
            let environ = try CrossProtocolEnviron.parseEnvironDump(try await SCGIClient.send(request, to: addresses[0]).body)
            #expect(environ["REQUEST_METHOD"] == "POST")
            #expect(environ["PATH_INFO"] == "/a/b")
            #expect(environ["QUERY_STRING"] == "x=1")
            #expect(environ["CONTENT_LENGTH"] == "5")
            #expect(environ["CONTENT_TYPE"] == "text/plain")
            #expect(environ["HTTP_X_TRACE"] == "t1")
            #expect(environ["HTTP_PROXY"] == nil)
            #expect(environ["SCGI"] == nil)
            #expect(environ["gateway.protocol"] == "scgi")
        }
    }

    @Test func echoOf16MiBComesBackIdentical() async throws {
        try await withLiveGateway([loopback(.scgi)], application: Echo()) { addresses in
            let payload = EchoPayload.make(bytes: 16 << 20)
            let clock = ContinuousClock()
            let start = clock.now
            let response = try await SCGIClient.send(
                ClientRequest(method: "PUT", target: "/echo", headers: [("Content-Type", "application/octet-stream")], body: payload),
                to: addresses[0])
            print("scgi 16 MiB echo: \(clock.now - start)")
            #expect(response.status.code == 200)
            #expect(response.body.readableBytes == payload.readableBytes)
            let identical = response.body == payload  // compared outside #expect: a failure must not print megabytes
            #expect(identical, "the body differs from the payload")
        }
    }

    @Test func malformedRequestsCloseOnlyTheirOwnConnection() async throws {
        let recorder = LogRecorder()
        let cases = SCGIMalformedCase.all.filter { $0.limits == GatewayLimits() }
        try await withLiveGateway([loopback(.scgi)], application: BodyCount(), logger: recorder.logger()) { addresses in
            let good = SCGIDecoderTests.specExample
            let result = try await IsolationCheck.run(good: good, split: 20, malformed: cases.map(\.bytes), address: addresses[0])
            for (testCase, reply) in zip(cases, result.malformedReplies) {
                #expect(reply.readableBytes == 0, "\(testCase.name): the server answered \(reply.text)")
                #expect(recorder.contains(testCase.error.description), "\(testCase.name): reason not logged in \(recorder.all)")
            }
            #expect(result.goodReply.text.hasPrefix("Status: 200 OK\r\n"))
            #expect(result.goodReply.text.hasSuffix("received 27"))
        }
    }

    /// A head the normalizer refuses (no REQUEST_METHOD) gets a CGI-style 400, then a close.
    @Test func unnormalizableHeadGets400() async throws {
        let recorder = LogRecorder()
        try await withLiveGateway([loopback(.scgi)], application: Hello(), logger: recorder.logger()) { addresses in
            let bytes = SCGIMalformedCase.netstring("CONTENT_LENGTH\u{0}0\u{0}SCGI\u{0}1\u{0}PATH_INFO\u{0}/\u{0}")
            let reply = try await RawClient.exchange(bytes, with: addresses[0], halfClose: false)
            #expect(reply.text.hasPrefix("Status: 400 Bad Request\r\n"))
            #expect(recorder.contains("the request has no REQUEST_METHOD"))
        }
    }

    @Test func unixSocketListenerWithMode0660() async throws {
        let path = "/tmp/postern-scgi-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        try await withLiveGateway([ListenerSpec(.scgi, .unix(path: path))], application: EnvironDump()) { _ in
            var info = stat()
            #expect(stat(path, &info) == 0)
            #expect(info.st_mode & 0o777 == 0o660)
            let target = try ClientTarget(parsing: "scgi+unix://\(path)/some/path?q=1")
            let response = try await ProtocolClients.send(ClientRequest(target: target.requestTarget), to: target)
            let environ = try CrossProtocolEnviron.parseEnvironDump(response.body)
            #expect(environ["PATH_INFO"] == "/some/path")
            #expect(environ["QUERY_STRING"] == "q=1")
            #expect(environ["REMOTE_ADDR"] == "127.0.0.1")  // as the client sent it
        }
        #expect(access(path, F_OK) != 0, "the socket file is removed on stop")
    }

    @Test func allowListRefusesOtherPeers() async throws {
        var allow = AllowList()
        try allow.add("192.0.2.1")
        let spec = ListenerSpec(.scgi, .tcp(host: "127.0.0.1", port: 0), allow: allow)
        try await withLiveGateway([spec], application: Hello()) { addresses in
            let reply = try await RawClient.exchange(SCGIDecoderTests.specExample, with: addresses[0], halfClose: false)
            #expect(reply.readableBytes == 0)
        }
    }
}

/// Streaming and timeouts, at the connection level.
@Suite struct SCGIStreamingTests {
    /// The application answers from the first chunk while most of the declared body has not
    /// been sent: the body is streamed, not buffered. The rest is then drained before the close.
    @Test func bodyStreamsIntoTheAppBeforeItIsComplete() async throws {
        try await withLiveGateway([loopback(.scgi)], application: FirstChunk()) { addresses in
            let declared = 1 << 20
            var head = try SCGIRequestEncoder.encodeHead(variables: [("REQUEST_METHOD", "POST")], contentLength: declared)
            head.writeString("early")
            let connection = try await RawClient.connect(to: addresses[0])
            try await connection.executeThenClose { inbound, outbound in
                try await outbound.write(head)
                var iterator = inbound.makeAsyncIterator()
                var reply = ByteBuffer()
                while !reply.text.hasSuffix("first: early"), var chunk = try await iterator.next() {
                    reply.writeBuffer(&chunk)
                }
                #expect(reply.text.hasPrefix("Status: 200 OK\r\n"))
                #expect(reply.text.hasSuffix("first: early"))
                // The rest of the body, which the server reads and drops, then closes.
                try await outbound.write(ByteBuffer(repeating: 0x61, count: declared - 5))
                var trailing = 0
                while let chunk = try await iterator.next() { trailing += chunk.readableBytes }
                #expect(trailing == 0)
            }
        }
    }

    /// A client that sends half a head and stops is closed after the header timeout.
    @Test(.timeLimit(.minutes(1))) func incompleteHeadIsClosedAfterTheHeaderTimeout() async throws {
        var limits = GatewayLimits()
        limits.headerTimeoutSeconds = 1  // wide bounds below: a loaded machine must not fail this
        try await withLiveGateway([loopback(.scgi)], application: Hello(), limits: limits) { addresses in
            let clock = ContinuousClock()
            let start = clock.now
            let reply = try await RawClient.exchange(Array(SCGIDecoderTests.specExample.prefix(30)), with: addresses[0], halfClose: false)
            let elapsed = clock.now - start
            #expect(reply.readableBytes == 0)
            #expect(elapsed >= .milliseconds(900))
            #expect(elapsed < .seconds(20))
        }
    }
}

extension SCGIStreamingTests {
    /// A client that stops half-way through its body is closed after the idle timeout, even
    /// though the application has already answered.
    @Test(.timeLimit(.minutes(1))) func stalledBodyIsClosedAfterTheIdleTimeout() async throws {
        var limits = GatewayLimits()
        limits.idleTimeoutSeconds = 1.5  // wide bounds below: a loaded machine must not fail this
        try await withLiveGateway([loopback(.scgi)], application: FirstChunk(), limits: limits) { addresses in
            var head = try SCGIRequestEncoder.encodeHead(variables: [("REQUEST_METHOD", "POST")], contentLength: 100)
            head.writeString("early")
            let clock = ContinuousClock()
            let start = clock.now
            let reply = try await RawClient.exchange(Array(head.readableBytesView), with: addresses[0], halfClose: false)
            let elapsed = clock.now - start
            #expect(reply.text.hasSuffix("first: early"))
            #expect(elapsed >= .milliseconds(1400))
            #expect(elapsed < .seconds(20))
        }
    }

    /// A slow application is not a slow client: the Echo of a body larger than every buffer
    /// still completes when the idle timeout is shorter than the whole transfer.
    @Test(.timeLimit(.minutes(1))) func backpressureIsNotAnIdleClient() async throws {
        var limits = GatewayLimits()
        limits.idleTimeoutSeconds = 0.3
        try await withLiveGateway([loopback(.scgi)], application: SlowEcho(), limits: limits) { addresses in
            let payload = EchoPayload.make(bytes: 4 << 20)
            let response = try await SCGIClient.send(ClientRequest(method: "POST", target: "/", body: payload), to: addresses[0])
            let identical = response.body == payload  // compared outside #expect: a failure must not print megabytes
            #expect(identical, "the body differs from the payload")
        }
    }
}

/// Echo that pauses 600 ms (twice the test idle timeout) after every 1 MiB it reads: the server stops reading meanwhile.
struct SlowEcho: Application {
    func respond(to environ: Environ) async throws -> Response {
        let body = environ.body
        return Response(
            status: .ok, headers: ["Content-Type": "application/octet-stream"],
            body: .stream(length: environ.contentLength) { writer in
                var sinceSleep = 0
                for try await chunk in body {
                    try await writer.write(chunk)
                    sinceSleep += chunk.readableBytes
                    if sinceSleep >= 1 << 20 {
                        sinceSleep = 0
                        try await Task.sleep(for: .milliseconds(600))
                    }
                }
            })
    }
}
