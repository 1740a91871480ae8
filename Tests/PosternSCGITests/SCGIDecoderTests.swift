import NIOCore
import PosternCore
import PosternEngine
import Testing

@testable import PosternSCGI

/// The SCGI decoder and encoder as plain values: spec fixtures, byte by byte and whole, limits.
@Suite struct SCGIDecoderTests {
    /// The example request from the SCGI specification (Neil Schemenauer), byte for byte.
    static let specExample: [UInt8] = Array(
        "70:CONTENT_LENGTH\u{0}27\u{0}SCGI\u{0}1\u{0}REQUEST_METHOD\u{0}POST\u{0}REQUEST_URI\u{0}/deepthought\u{0},What is the answer to life?".utf8)

    @Test(arguments: [false, true])
    func specExampleDecodes(byteByByte: Bool) throws {
        let decoded = try SCGIDecoding.decode(Self.specExample, byteByByte: byteByByte)
        let head = try #require(decoded.head)
        #expect(head.contentLength == 27)
        #expect(head.headers.map { String(decoding: $0.name, as: UTF8.self) } == ["CONTENT_LENGTH", "SCGI", "REQUEST_METHOD", "REQUEST_URI"])
        #expect(head.headers.map { String(decoding: $0.value, as: UTF8.self) } == ["27", "1", "POST", "/deepthought"])
        #expect(String(decoding: decoded.body, as: UTF8.self) == "What is the answer to life?")
        #expect(decoded.ended)
        #expect(decoded.headCount == 1)
    }

    @Test func encoderWritesTheSpecExample() throws {
        var head = try SCGIRequestEncoder.encodeHead(
            variables: [("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/deepthought")], contentLength: 27)
        head.writeString("What is the answer to life?")
        #expect(Array(head.readableBytesView) == Self.specExample)
    }

    @Test func bodyIsFramedByContentLengthAndTrailingBytesAreIgnored() throws {
        var bytes = Self.specExample
        bytes += Array("EXTRA".utf8)
        let decoded = try SCGIDecoding.decode(bytes, byteByByte: false)
        #expect(String(decoding: decoded.body, as: UTF8.self) == "What is the answer to life?")
        #expect(decoded.ended)
    }

    @Test func zeroLengthBodyEndsAtOnce() throws {
        let head = try SCGIRequestEncoder.encodeHead(variables: [("REQUEST_METHOD", "GET")], contentLength: 0)
        let decoded = try SCGIDecoding.decode(Array(head.readableBytesView), byteByByte: true, eof: false)
        #expect(decoded.head?.contentLength == 0)
        #expect(decoded.body.isEmpty)
        #expect(decoded.ended)
    }

    @Test(arguments: SCGIMalformedCase.all)
    func malformedInputIsRefused(_ testCase: SCGIMalformedCase) {
        for byteByByte in [false, true] {
            #expect(throws: testCase.error, "\(testCase.name), byte by byte: \(byteByByte)") {
                _ = try SCGIDecoding.decode(testCase.bytes, limits: testCase.limits, byteByByte: byteByByte)
            }
        }
    }

    /// The declared netstring length is checked digit by digit: a length over the limit is
    /// refused before its colon and before any content is buffered.
    @Test func netstringLengthAtAndOverTheLimit() throws {
        var limits = GatewayLimits()
        limits.maxHeaderBytes = 1024
        // Exactly at the limit: a head of 1024 content bytes decodes.
        let content = SCGIDecoding.content(padTo: 1024)
        let atLimit = Array("1024:".utf8) + content + Array(",".utf8)
        let decoded = try SCGIDecoding.decode(atLimit, limits: limits, byteByByte: false)
        #expect(decoded.head?.headers.count == 4)
        // One over: refused on the last digit, with no content sent at all.
        #expect(throws: SCGIError.headTooLarge(declared: 1025, limit: 1024)) {
            _ = try SCGIDecoding.decode(Array("1025".utf8), limits: limits, byteByByte: true, eof: false)
        }
        // A huge length is refused as soon as it passes the limit, not after ten digits.
        #expect(throws: SCGIError.headTooLarge(declared: 9999, limit: 1024)) {
            _ = try SCGIDecoding.decode(Array("99999999999999999999:".utf8), limits: limits, byteByByte: true, eof: false)
        }
    }

    @Test func encoderRefusesNUL() {
        #expect(throws: SCGIError.headerNameNUL) {
            _ = try SCGIRequestEncoder.encodeHead(variables: [("HTTP_X", "a\u{0}b")], contentLength: 0)
        }
    }
}

/// One malformed SCGI input and the rule it breaks.
struct SCGIMalformedCase: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let error: SCGIError
    var limits = GatewayLimits()

    var testDescription: String { name }

    static func netstring(_ content: String, comma: String = ",") -> [UInt8] {
        Array("\(content.utf8.count):\(content)\(comma)".utf8)
    }

    static let all: [SCGIMalformedCase] = {
        var hugeLimits = GatewayLimits()
        hugeLimits.maxHeaderBytes = .max
        return [
            .init(name: "junk before the length", bytes: Array(" 70:".utf8), error: .invalidLengthByte(0x20)),
            .init(name: "letter in the length", bytes: Array("7x:".utf8), error: .invalidLengthByte(UInt8(ascii: "x"))),
            .init(name: "no digits", bytes: Array(":,".utf8), error: .emptyLength),
            .init(name: "leading zero", bytes: Array("070:".utf8), error: .leadingZero),
            .init(name: "eleven digits", bytes: Array("12345678901:".utf8), error: .tooManyLengthDigits(max: 10), limits: hugeLimits),
            .init(name: "huge declared length", bytes: Array("4294967296:".utf8), error: .headTooLarge(declared: 429496, limit: 131072)),
            .init(
                name: "missing comma", bytes: netstring("CONTENT_LENGTH\u{0}0\u{0}SCGI\u{0}1\u{0}", comma: "X"),
                error: .missingComma(found: UInt8(ascii: "X"))),
            .init(name: "empty netstring", bytes: netstring(""), error: .contentLengthNotFirst),
            .init(name: "unterminated last string", bytes: netstring("CONTENT_LENGTH\u{0}0\u{0}SCGI\u{0}1"), error: .unterminatedHeader),
            .init(name: "odd number of strings", bytes: netstring("CONTENT_LENGTH\u{0}0\u{0}SCGI\u{0}"), error: .oddStringCount(3)),
            .init(name: "CONTENT_LENGTH not first", bytes: netstring("SCGI\u{0}1\u{0}CONTENT_LENGTH\u{0}0\u{0}"), error: .contentLengthNotFirst),
            .init(name: "CONTENT_LENGTH not a number", bytes: netstring("CONTENT_LENGTH\u{0}-1\u{0}SCGI\u{0}1\u{0}"), error: .invalidContentLength),
            .init(name: "CONTENT_LENGTH empty", bytes: netstring("CONTENT_LENGTH\u{0}\u{0}SCGI\u{0}1\u{0}"), error: .invalidContentLength),
            .init(
                name: "CONTENT_LENGTH twice", bytes: netstring("CONTENT_LENGTH\u{0}0\u{0}SCGI\u{0}1\u{0}CONTENT_LENGTH\u{0}5\u{0}"),
                error: .duplicateHeader("CONTENT_LENGTH")),
            .init(name: "SCGI missing", bytes: netstring("CONTENT_LENGTH\u{0}0\u{0}REQUEST_METHOD\u{0}GET\u{0}"), error: .missingSCGI),
            .init(name: "SCGI is 2", bytes: netstring("CONTENT_LENGTH\u{0}0\u{0}SCGI\u{0}2\u{0}"), error: .unsupportedSCGIVersion("2")),
            .init(name: "empty header name", bytes: netstring("CONTENT_LENGTH\u{0}0\u{0}SCGI\u{0}1\u{0}\u{0}x\u{0}"), error: .emptyHeaderName),
            .init(
                name: "body over --max-body-bytes", bytes: netstring("CONTENT_LENGTH\u{0}4294967297\u{0}SCGI\u{0}1\u{0}"),
                error: .bodyTooLarge(declared: 4_294_967_297, limit: 4 << 30)),
            .init(name: "closed inside the netstring", bytes: Array("70:CONTENT_LENGTH".utf8), error: .truncatedHead),
            .init(
                name: "body shorter than declared",
                bytes: netstring("CONTENT_LENGTH\u{0}10\u{0}SCGI\u{0}1\u{0}REQUEST_METHOD\u{0}POST\u{0}") + Array("short".utf8),
                error: .truncatedBody(missing: 5)),
        ]
    }()
}

/// Drives the decoder without a channel, as a `ByteToMessageHandler` would.
enum SCGIDecoding {
    struct Decoded {
        var head: SCGIRequestHead?
        var headCount = 0
        var body: [UInt8] = []
        var ended = false
    }

    static func decode(_ bytes: [UInt8], limits: GatewayLimits = GatewayLimits(), byteByByte: Bool, eof: Bool = true) throws -> Decoded {
        let processor = NIOSingleStepByteToMessageProcessor(SCGIRequestDecoder(limits: limits))
        var decoded = Decoded()
        func receive(_ part: RequestPart<SCGIRequestHead>) {
            switch part {
            case .head(let head, let bodyLength):
                decoded.head = head
                decoded.headCount += 1
                if bodyLength == 0 { decoded.ended = true }
            case .body(let chunk, let isLast):
                decoded.body += chunk.readableBytesView
                if isLast { decoded.ended = true }
            }
        }
        if byteByByte {
            for byte in bytes { try processor.process(buffer: ByteBuffer(bytes: [byte]), receive) }
        } else {
            try processor.process(buffer: ByteBuffer(bytes: bytes), receive)
        }
        if eof { try processor.finishProcessing(seenEOF: true, receive) }
        return decoded
    }

    /// Netstring content of exactly `size` bytes: the required headers and padding in a fourth.
    static func content(padTo size: Int) -> [UInt8] {
        let fixed = Array("CONTENT_LENGTH\u{0}0\u{0}SCGI\u{0}1\u{0}REQUEST_METHOD\u{0}GET\u{0}HTTP_X_PAD\u{0}".utf8)
        return fixed + [UInt8](repeating: UInt8(ascii: "p"), count: size - fixed.count - 1) + [0]
    }
}
