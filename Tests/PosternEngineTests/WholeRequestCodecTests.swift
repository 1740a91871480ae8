import Logging
import NIOCore
import PosternApps
import PosternCore
import PosternEngine
import PosternFastCGI
import PosternRuntime
import PosternSCGI
import PosternTestSupport
import PosternUWSGI
import Testing

/// The fast path's one hook per protocol: a whole request in, or `nil` for the full engine.
@Suite struct WholeRequestCodecTests {
    static let configuration = GatewayConfiguration(application: Hello())
    static let connection = ConnectionContext(remoteAddress: nil, localAddress: nil, configuration: configuration, logger: Logger(label: "test"))

    static func codec(_ listenerProtocol: ListenerProtocol) -> any WholeRequestCodec {
        switch listenerProtocol {
        case .scgi: return SCGIProtocolServer(configuration: configuration)
        case .uwsgi: return UWSGIProtocolServer(configuration: configuration)
        default: return FastCGIProtocolServer(configuration: configuration)
        }
    }

    static func post(_ listenerProtocol: ListenerProtocol, body: [UInt8], keepConnection: Bool = false) -> [UInt8] {
        RequestBytes.head(listenerProtocol, path: "/p", contentLength: body.count, keepConnection: keepConnection)
            + RequestBytes.body(listenerProtocol, body, end: true)
    }

    @Test(arguments: [ListenerProtocol.scgi, .uwsgi, .fastcgi])
    func aWholeRequestIsTakenWithItsBody(_ listenerProtocol: ListenerProtocol) throws {
        let bytes = Self.post(listenerProtocol, body: Array("ping".utf8))
        let whole = try #require(Self.codec(listenerProtocol).wholeRequest(in: ByteBuffer(bytes: bytes), connection: Self.connection))
        let variables = try whole.variables.get()
        #expect(variables.variables["PATH_INFO"]?.string == "/p")
        #expect(variables.variables["REQUEST_METHOD"]?.string == "POST")
        #expect(variables.contentLength == 4)
        #expect(String(buffer: whole.body) == "ping")
    }

    /// Every prefix of a request is "not whole yet": the full engine waits for the rest.
    @Test(arguments: [ListenerProtocol.scgi, .uwsgi, .fastcgi])
    func everyPrefixIsLeftToTheFullEngine(_ listenerProtocol: ListenerProtocol) {
        let bytes = Self.post(listenerProtocol, body: Array("0123456789".utf8))
        let codec = Self.codec(listenerProtocol)
        for length in 0..<bytes.count {
            #expect(codec.wholeRequest(in: ByteBuffer(bytes: bytes.prefix(length)), connection: Self.connection) == nil, "prefix \(length)")
        }
    }

    /// Bytes after the request are not the fast path's to judge.
    @Test(arguments: [ListenerProtocol.scgi, .uwsgi, .fastcgi])
    func bytesAfterTheRequestAreLeftToTheFullEngine(_ listenerProtocol: ListenerProtocol) {
        let bytes = Self.post(listenerProtocol, body: Array("ab".utf8)) + [0x01]
        #expect(Self.codec(listenerProtocol).wholeRequest(in: ByteBuffer(bytes: bytes), connection: Self.connection) == nil)
    }

    @Test(arguments: [ListenerProtocol.scgi, .uwsgi, .fastcgi])
    func malformedBytesAreLeftToTheFullEngine(_ listenerProtocol: ListenerProtocol) {
        for garbage in [Array("xyz:,".utf8), [UInt8](repeating: 0xFF, count: 64), [0x01, 0x01, 0x00, 0x01, 0xFF, 0xFF, 0x00, 0x00]] {
            #expect(Self.codec(listenerProtocol).wholeRequest(in: ByteBuffer(bytes: garbage), connection: Self.connection) == nil)
        }
    }

    /// KEEP_CONN, a FILTER, a management record and an abort are the full engine's.
    @Test func fastCGIKeepsWhatItDoesNotFullyUnderstandForTheFullEngine() {
        let codec = Self.codec(.fastcgi)
        let kept = Self.post(.fastcgi, body: [], keepConnection: true)
        #expect(codec.wholeRequest(in: ByteBuffer(bytes: kept), connection: Self.connection) == nil)

        var filter = ByteBuffer()
        FastCGIRecordEncoder.writeBeginRequest(requestID: 1, role: .filter, keepConnection: false, into: &filter)
        filter.writeBytes(Self.post(.fastcgi, body: []).dropFirst(16))
        #expect(codec.wholeRequest(in: filter, connection: Self.connection) == nil)

        var management = ByteBuffer()
        FastCGIRecordEncoder.writeValues(type: .getValues, [("FCGI_MPXS_CONNS", "")], into: &management)
        management.writeBytes(Self.post(.fastcgi, body: []))
        #expect(codec.wholeRequest(in: management, connection: Self.connection) == nil)

        var aborted = ByteBuffer(bytes: RequestBytes.head(.fastcgi, path: "/", contentLength: 2))
        FastCGIRecordEncoder.write(FastCGIRecord(type: .abortRequest, requestID: 1), into: &aborted)
        #expect(codec.wholeRequest(in: aborted, connection: Self.connection) == nil)
    }

    /// STDIN that disagrees with CONTENT_LENGTH: the full engine fails the body and says why.
    @Test func fastCGIStdinShortOfContentLengthIsLeftToTheFullEngine() {
        let bytes = RequestBytes.head(.fastcgi, path: "/", contentLength: 5) + RequestBytes.body(.fastcgi, Array("abc".utf8), end: true)
        #expect(Self.codec(.fastcgi).wholeRequest(in: ByteBuffer(bytes: bytes), connection: Self.connection) == nil)
    }

    /// The response as one write: STDERR lines, STDOUT with head and body, the stream ends and
    /// END_REQUEST, byte for byte (FastCGI 1.0 §5.3, §5.5).
    @Test func fastCGIFramingIsOneBufferOfRecords() throws {
        let whole = try #require(Self.codec(.fastcgi).wholeRequest(in: ByteBuffer(bytes: Self.post(.fastcgi, body: [])), connection: Self.connection))
        whole.errors?.write("careful")
        var out = ByteBuffer()
        try whole.framing.writeWhole(.text("hi"), body: ByteBuffer(string: "hi"), into: &out)

        var head = ByteBuffer()
        try Response.text("hi").encodeCGIHead(into: &head)
        var expected = ByteBuffer()
        FastCGIRecordEncoder.writeStream(type: .stderr, requestID: 1, content: ByteBuffer(string: "careful\n"), into: &expected)
        var stdout = head
        stdout.writeString("hi")
        FastCGIRecordEncoder.writeStream(type: .stdout, requestID: 1, content: stdout, into: &expected)
        FastCGIRecordEncoder.writeStreamEnd(type: .stderr, requestID: 1, into: &expected)
        FastCGIRecordEncoder.writeStreamEnd(type: .stdout, requestID: 1, into: &expected)
        FastCGIRecordEncoder.writeEndRequest(requestID: 1, appStatus: 0, protocolStatus: .requestComplete, into: &expected)
        #expect(Array(out.readableBytesView) == Array(expected.readableBytesView))
    }

    /// SCGI answers CGI-style and uwsgi with a status line, both with the body's length.
    @Test func closeDelimitedFramingGivesTheLength() throws {
        var cgi = ByteBuffer()
        try CloseDelimitedFraming(statusLine: false).writeWhole(.text("hi"), body: ByteBuffer(string: "hi"), into: &cgi)
        #expect(String(buffer: cgi) == "Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\nhi")
        var http = ByteBuffer()
        try CloseDelimitedFraming(statusLine: true).writeWhole(.text("hi"), body: ByteBuffer(string: "hi"), into: &http)
        #expect(String(buffer: http).hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(String(buffer: http).hasSuffix("Content-Length: 2\r\n\r\nhi"))
    }
}
