import NIOCore
import PosternCore
import Testing

@Suite("Response heads")
struct ResponseEncodingTests {
    /// The own-app guide (examples/README.md, "More of the contract") shows these ways to make a
    /// response; each is built here as written there.
    @Test("the guide's responses: .text, .text with a status, .error, and the full initializer")
    func guideResponses() {
        func text(_ response: Response) -> String {
            guard case .bytes(let buffer) = response.body.storage else { return "(a stream)" }
            return String(buffer: buffer)
        }
        let hello: Response = .text("Hello\n")
        #expect(hello.status.code == 200 && text(hello) == "Hello\n")
        #expect(hello.headers["Content-Type"] == "text/plain; charset=utf-8")
        let missing: Response = .text("no such item\n", status: .notFound)
        #expect(missing.status.code == 404 && text(missing) == "no such item\n")
        let busy: Response = .error(.serviceUnavailable)
        #expect(busy.status.code == 503 && text(busy).hasPrefix("503"))
        let created = Response(
            status: ResponseStatus(code: 201),
            headers: ["Content-Type": "application/json", "Location": "/items/7"],
            body: ResponseBody(string: #"{"id": 7}"#))
        #expect(created.status.code == 201 && created.headers["Location"] == "/items/7" && text(created) == #"{"id": 7}"#)
        #expect(text(Response(body: ResponseBody(bytes: Array("ab".utf8)))) == "ab")
    }

    @Test("the CGI head is byte-exact (RFC 3875 §6.2)")
    func cgiHead() throws {
        var buffer = ByteBuffer()
        try Response(status: .notFound, headers: ["Content-Type": "text/plain", "X-A": "1"]).encodeCGIHead(into: &buffer)
        #expect(String(buffer: buffer) == "Status: 404 Not Found\r\nContent-Type: text/plain\r\nX-A: 1\r\n\r\n")
    }

    @Test("the HTTP head is byte-exact")
    func httpHead() throws {
        var buffer = ByteBuffer()
        try Response.text("x").encodeHTTPHead(into: &buffer)
        #expect(String(buffer: buffer) == "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
    }

    @Test("a header value with CR, LF or NUL is never encoded", arguments: ["a\rb", "a\nb", "a\u{0}b", "a\u{7F}"])
    func unsafeValue(value: String) {
        var buffer = ByteBuffer()
        #expect(throws: ResponseError.self) {
            try Response(status: .ok, headers: ["X": value]).encodeCGIHead(into: &buffer)
        }
        #expect(buffer.readableBytes == 0)
    }

    @Test("a reason phrase with a line break is never encoded")
    func unsafeReason() {
        var buffer = ByteBuffer()
        #expect(throws: ResponseError(.invalidReasonPhrase)) {
            try Response(status: ResponseStatus(code: 200, reasonPhrase: "OK\r\nX: y")).encodeHTTPHead(into: &buffer)
        }
    }
}

@Suite("CGI response head parser")
struct CGIResponseHeadParserTests {
    func parse(_ text: String, mode: CGIResponseHeadParser.Mode = .cgi, byteByByte: Bool = false) throws -> (CGIResponseHeadParser.Head, String) {
        var parser = CGIResponseHeadParser(mode: mode)
        let chunks: [String] = byteByByte ? text.map { String($0) } : [text]
        var bodyParts = ""
        var head: CGIResponseHeadParser.Head?
        for chunk in chunks {
            if head != nil {
                bodyParts += chunk
                continue
            }
            if case .head(let parsed, let body) = try parser.feed(ByteBuffer(string: chunk)) {
                head = parsed
                bodyParts += String(buffer: body)
            }
        }
        return (try #require(head), bodyParts)
    }

    @Test("Status, fields and body, fed whole and byte by byte", arguments: [false, true])
    func basic(byteByByte: Bool) throws {
        let (head, body) = try parse("Status: 404 Nope\r\nContent-Type: text/plain\r\n\r\nbody", byteByByte: byteByByte)
        #expect(head.status == ResponseStatus(code: 404, reasonPhrase: "Nope"))
        #expect(head.headers["content-type"] == "text/plain")
        #expect(head.hadExplicitStatus)
        #expect(body == "body")
    }

    @Test("bare LF line ends, as shell scripts print them")
    func bareLF() throws {
        let (head, body) = try parse("Content-Type: text/plain\n\nhi\n")
        #expect(head.status.code == 200)
        #expect(!head.hadExplicitStatus)
        #expect(body == "hi\n")
    }

    @Test("Location without Status means 302")
    func location() throws {
        let (head, _) = try parse("Location: http://example.com/\r\n\r\n")
        #expect(head.status.code == 302)
    }

    @Test("an HTTP status line, for uwsgi and nph- responses")
    func statusLine() throws {
        let (head, body) = try parse("HTTP/1.1 201 Created\r\nX: y\r\n\r\nz", mode: .httpStatusLine)
        #expect(head.status == ResponseStatus(code: 201, reasonPhrase: "Created"))
        #expect(body == "z")
    }

    @Test("values are trimmed of spaces and tabs on both sides, inner ones kept; status in any case; fields in order")
    func trimmingAndOrder() throws {
        let (head, _) = try parse("x-a:\t one  two \t\r\nsTaTuS:   418 Teapot \r\nX-B:\r\nX-A: again\r\n\r\n")
        #expect(head.status == ResponseStatus(code: 418, reasonPhrase: "Teapot"))
        #expect(Array(head.headers.map { "\($0.name)=\($0.value)" }) == ["x-a=one  two", "X-B=", "X-A=again"])
    }

    @Test("obs-text bytes in a value pass as they are (RFC 9110 §5.5)")
    func obsText() throws {
        var parser = CGIResponseHeadParser()
        var bytes = ByteBuffer(string: "X-Name: caf")
        bytes.writeBytes([0xC3, 0xA9])
        bytes.writeString("\r\n\r\n")
        guard case .head(let head, _) = try parser.feed(bytes) else {
            Issue.record("no head")
            return
        }
        #expect(head.headers["x-name"] == "café")
    }

    @Test(
        "malformed heads are errors",
        arguments: [
            ": no name\r\n\r\n",
            "X-Split: a\rb\r\n\r\n",
            "HTTP/1.1 200 OK\r\n\r\n",
            "no colon here\r\n\r\n",
            "Status: abc\r\n\r\n",
            "Status: 20\r\n\r\n",
            "Bad Name: x\r\n\r\n",
            "X: a\u{1}b\r\n\r\n",
        ])
    func malformed(text: String) {
        #expect(throws: CGIResponseHeadParser.ParseError.self) { _ = try parse(text) }
    }

    @Test("a head over the limit is refused without waiting for its end")
    func tooLarge() {
        var parser = CGIResponseHeadParser(maxHeadBytes: 16)
        #expect(throws: CGIResponseHeadParser.ParseError.headTooLarge(limit: 16)) {
            _ = try parser.feed(ByteBuffer(string: "X-Long: " + String(repeating: "a", count: 32)))
        }
    }

    @Test("output that ends before the blank line is truncated")
    func truncated() throws {
        var parser = CGIResponseHeadParser()
        #expect(
            try {
                if case .needMore = try parser.feed(ByteBuffer(string: "Content-Type: x\r\n")) { return true }
                return false
            }())
        #expect(throws: CGIResponseHeadParser.ParseError.truncated) { try parser.finish() }
    }
}
