import NIOCore
import PosternCore
import PosternEngine
import Testing

@testable import PosternUWSGI

/// The uwsgi decoder and encoder as plain values: packets built by hand, sizes at their limits.
@Suite struct UWSGIDecoderTests {
    /// A modifier1 0 request built by hand from the uwsgi protocol docs: CONTENT_LENGTH=2,
    /// REQUEST_METHOD=GET, PATH_INFO=/hi, then the body "ok". datasize 56 = 0x0038, little-endian.
    static let handBuilt: [UInt8] =
        [0x00, 0x38, 0x00, 0x00]
        + [0x0E, 0x00] + Array("CONTENT_LENGTH".utf8) + [0x01, 0x00] + Array("2".utf8)
        + [0x0E, 0x00] + Array("REQUEST_METHOD".utf8) + [0x03, 0x00] + Array("GET".utf8)
        + [0x09, 0x00] + Array("PATH_INFO".utf8) + [0x03, 0x00] + Array("/hi".utf8)
        + Array("ok".utf8)

    @Test(arguments: [false, true])
    func handBuiltPacketDecodes(byteByByte: Bool) throws {
        let decoded = try UWSGIDecoding.decode(Self.handBuilt, byteByByte: byteByByte)
        let head = try #require(decoded.head)
        #expect(head.contentLength == 2)
        #expect(head.variables.map { String(decoding: $0.key, as: UTF8.self) } == ["CONTENT_LENGTH", "REQUEST_METHOD", "PATH_INFO"])
        #expect(head.variables.map { String(decoding: $0.value, as: UTF8.self) } == ["2", "GET", "/hi"])
        #expect(decoded.body == Array("ok".utf8))
        #expect(decoded.ended)
    }

    @Test func encoderWritesTheHandBuiltPacket() throws {
        var packet = try UWSGIRequestEncoder.encodeHead(variables: [("REQUEST_METHOD", "GET"), ("PATH_INFO", "/hi")], contentLength: 2)
        packet.writeString("ok")
        #expect(Array(packet.readableBytesView) == Self.handBuilt)
    }

    /// Sizes above 255 show the byte order: 300 = 0x012C is written 2C 01.
    @Test func sizesAreLittleEndian() throws {
        let value = [UInt8](repeating: UInt8(ascii: "v"), count: 300)
        let block: [UInt8] = [0x01, 0x00, UInt8(ascii: "K"), 0x2C, 0x01] + value
        let packet: [UInt8] = [0x00, 0x31, 0x01, 0x00] + block  // datasize 305 = 0x0131
        let decoded = try UWSGIDecoding.decode(packet, byteByByte: false)
        #expect(decoded.head?.variables.first.map { Array($0.value) } == value)
        let encoded = try UWSGIRequestEncoder.encodeHead(variables: [("K", String(repeating: "v", count: 300))], contentLength: 0)
        // CONTENT_LENGTH=0 first (2+14+2+1 = 19 bytes), then the 305: 324 = 0x0144.
        #expect(Array(encoded.readableBytesView.prefix(4)) == [0x00, 0x44, 0x01, 0x00])
    }

    /// A vars block of exactly 65535 bytes (the u16 maximum and the default limit) decodes; the
    /// encoder refuses one byte more, and a value of 65536 bytes.
    @Test func varsBlockAtTheWireMaximum() throws {
        let key = "HTTP_X_BIG"
        let fitting = 65535 - 4 - key.utf8.count - (2 + 14 + 2 + 1)  // room left after CONTENT_LENGTH=0
        let packet = try UWSGIRequestEncoder.encodeHead(variables: [(key, String(repeating: "b", count: fitting))], contentLength: 0)
        #expect(packet.readableBytes == 4 + 65535)
        #expect(Array(packet.readableBytesView.prefix(4)) == [0x00, 0xFF, 0xFF, 0x00])
        let decoded = try UWSGIDecoding.decode(Array(packet.readableBytesView), byteByByte: false)
        #expect(decoded.head?.variables.last?.value.count == fitting)
        #expect(decoded.ended)

        #expect(throws: UWSGIError.fieldTooLarge(field: "vars block", size: 65536)) {
            _ = try UWSGIRequestEncoder.encodeHead(variables: [(key, String(repeating: "b", count: fitting + 1))], contentLength: 0)
        }
        #expect(throws: UWSGIError.fieldTooLarge(field: "value of HTTP_X", size: 65536)) {
            _ = try UWSGIRequestEncoder.encodeHead(variables: [("HTTP_X", String(repeating: "b", count: 65536))], contentLength: 0)
        }
    }

    /// A var whose size field claims 65535 bytes in a smaller block is refused by the check
    /// against what remains (the CVE-2020-11984 pattern), not read past the block.
    @Test func varSizeOf65535InASmallBlockIsRefused() {
        let block: [UInt8] = [0x01, 0x00, UInt8(ascii: "K"), 0xFF, 0xFF] + Array("short".utf8)
        let packet: [UInt8] = [0x00, UInt8(block.count), 0x00, 0x00] + block + [UInt8](repeating: 0x41, count: 70000)
        #expect(throws: UWSGIError.truncatedVar(field: "the value of K", declared: 65535, available: 5)) {
            _ = try UWSGIDecoding.decode(packet, byteByByte: false)
        }
    }

    /// `--uwsgi-max-vars`: a block at the configured limit decodes, one byte over is refused from
    /// the 4-byte header alone, before any vars byte is buffered.
    @Test func configuredVarsLimit() throws {
        var limits = GatewayLimits()
        limits.maxUWSGIVarsBytes = 4096
        let key = "HTTP_X_PAD"
        let fitting = 4096 - 4 - key.utf8.count - (2 + 14 + 2 + 1)
        let atLimit = try UWSGIRequestEncoder.encodeHead(variables: [(key, String(repeating: "p", count: fitting))], contentLength: 0)
        #expect(atLimit.readableBytes == 4 + 4096)
        #expect(try UWSGIDecoding.decode(Array(atLimit.readableBytesView), limits: limits, byteByByte: false).head != nil)
        #expect(throws: UWSGIError.varsTooLarge(declared: 4097, limit: 4096)) {
            _ = try UWSGIDecoding.decode([0x00, 0x01, 0x10, 0x00], limits: limits, byteByByte: true, eof: false)
        }
    }

    @Test(arguments: UWSGIMalformedCase.all)
    func malformedInputIsRefused(_ testCase: UWSGIMalformedCase) {
        for byteByByte in [false, true] {
            #expect(throws: testCase.error, "\(testCase.name), byte by byte: \(byteByByte)") {
                _ = try UWSGIDecoding.decode(testCase.bytes, byteByByte: byteByByte)
            }
        }
    }
}

/// One malformed uwsgi input and the rule it breaks.
struct UWSGIMalformedCase: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let error: UWSGIError

    var testDescription: String { name }

    /// A modifier1 0 packet around a vars block given as raw bytes.
    static func packet(_ block: [UInt8], body: [UInt8] = []) -> [UInt8] {
        [0x00, UInt8(block.count & 0xFF), UInt8(block.count >> 8), 0x00] + block + body
    }

    static func variable(_ key: String, _ value: String) -> [UInt8] {
        [UInt8(key.utf8.count), 0x00] + Array(key.utf8) + [UInt8(value.utf8.count), 0x00] + Array(value.utf8)
    }

    static let all: [UWSGIMalformedCase] = [
        .init(name: "modifier1 5 (PSGI)", bytes: [0x05, 0x00, 0x00, 0x00], error: .unsupportedModifier1(5)),
        .init(name: "modifier2 1", bytes: [0x00, 0x00, 0x00, 0x01], error: .unsupportedModifier2(modifier1: 0, modifier2: 1)),
        .init(name: "size field cut short", bytes: packet([0x01]), error: .truncatedVar(field: "the size of the key", declared: 2, available: 1)),
        .init(name: "key longer than the block", bytes: packet([0x05, 0x00, 0x41]), error: .truncatedVar(field: "the key", declared: 5, available: 1)),
        .init(
            name: "value size missing", bytes: packet([0x01, 0x00, 0x41]), error: .truncatedVar(field: "the size of the value of A", declared: 2, available: 0)),
        .init(name: "empty key", bytes: packet([0x00, 0x00, 0x00, 0x00]), error: .emptyKey),
        .init(name: "CONTENT_LENGTH not a number", bytes: packet(variable("CONTENT_LENGTH", "1e3")), error: .invalidContentLength),
        .init(
            name: "CONTENT_LENGTH twice, different", bytes: packet(variable("CONTENT_LENGTH", "1") + variable("CONTENT_LENGTH", "2")),
            error: .conflictingContentLength),
        .init(
            name: "body over --max-body-bytes", bytes: packet(variable("CONTENT_LENGTH", "9999999999999")),
            error: .bodyTooLarge(declared: 9_999_999_999_999, limit: 4 << 30)),
        .init(name: "closed inside the header", bytes: [0x00, 0x10], error: .truncatedHeader),
        .init(name: "closed inside the vars", bytes: [0x00, 0x10, 0x00, 0x00, 0x01], error: .truncatedVars(missing: 15)),
        .init(
            name: "body shorter than declared",
            bytes: packet(variable("CONTENT_LENGTH", "10") + variable("REQUEST_METHOD", "POST"), body: Array("short".utf8)),
            error: .truncatedBody(missing: 5)),
    ]
}

/// Drives the decoder without a channel, as a `ByteToMessageHandler` would.
enum UWSGIDecoding {
    struct Decoded {
        var head: UWSGIRequestHead?
        var body: [UInt8] = []
        var ended = false
    }

    static func decode(_ bytes: [UInt8], limits: GatewayLimits = GatewayLimits(), byteByByte: Bool, eof: Bool = true) throws -> Decoded {
        let processor = NIOSingleStepByteToMessageProcessor(UWSGIRequestDecoder(limits: limits))
        var decoded = Decoded()
        func receive(_ part: RequestPart<UWSGIRequestHead>) {
            switch part {
            case .head(let head, let bodyLength):
                decoded.head = head
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
}
