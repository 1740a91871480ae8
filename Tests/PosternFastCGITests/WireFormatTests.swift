// Byte-exact tests of FastCGI records and name-value pairs (FastCGI 1.0 §3.3, §3.4, §5, Appendix B).
import NIOCore
import PosternFastCGI
import Testing

/// Feeds `input` to a fresh decoder in one piece or byte by byte; returns the records.
func decodeAll(_ input: ByteBuffer, byteByByte: Bool) throws -> [FastCGIRecord] {
    var decoder = FastCGIRecordDecoder()
    var records: [FastCGIRecord] = []
    var buffer = ByteBuffer()
    if byteByByte {
        for byte in input.readableBytesView {
            buffer.writeInteger(byte)
            while let record = try decoder.decode(buffer: &buffer) { records.append(record) }
        }
    } else {
        buffer = input
        while let record = try decoder.decode(buffer: &buffer) { records.append(record) }
    }
    if let last = try decoder.decodeLast(buffer: &buffer, seenEOF: true) { records.append(last) }
    return records
}

@Suite("FastCGI wire format")
struct WireFormatTests {
    /// Appendix B's first request: BEGIN_REQUEST (RESPONDER, no KEEP_CONN), one PARAMS pair, the
    /// empty PARAMS and the empty STDIN.
    static let appendixBRequest = bytes(
        """
        01 01 0001 0008 00 00   0001 00 0000000000
        01 04 0001 000f 01 00   0b 02 5345525645525f504f5254 3830  00
        01 04 0001 0000 00 00
        01 05 0001 0000 00 00
        """)

    @Test("Appendix B request decodes the same whole and byte by byte", arguments: [false, true])
    func decodesAppendixB(byteByByte: Bool) throws {
        let records = try decodeAll(Self.appendixBRequest, byteByByte: byteByByte)
        #expect(records.map(\.type) == [.beginRequest, .params, .params, .stdin])
        #expect(records.allSatisfy { $0.requestID == 1 })
        let begin = try FastCGIBeginRequest(parsing: records[0].content)
        #expect(begin == FastCGIBeginRequest(role: .responder, keepConnection: false))
        var decoder = FastCGINameValuePairDecoder(maxLength: 1024)
        let pairs = try decoder.decodeAll(records[1].content)
        #expect(pairs.count == 1)
        #expect(String(buffer: pairs[0].name) == "SERVER_PORT")
        #expect(String(buffer: pairs[0].value) == "80")
        #expect(records[2].content.readableBytes == 0)
    }

    @Test("the encoder writes Appendix B's records byte for byte, padded to 8")
    func encodesAppendixB() {
        var out = ByteBuffer()
        FastCGIRecordEncoder.writeBeginRequest(requestID: 1, role: .responder, keepConnection: false, into: &out)
        var params = ByteBuffer()
        FastCGINameValuePairs.write(name: "SERVER_PORT", value: "80", into: &params)
        FastCGIRecordEncoder.writeStream(type: .params, requestID: 1, content: params, into: &out)
        FastCGIRecordEncoder.writeStreamEnd(type: .params, requestID: 1, into: &out)
        FastCGIRecordEncoder.writeStreamEnd(type: .stdin, requestID: 1, into: &out)
        #expect(out == Self.appendixBRequest)
        #expect(out.readableBytes % 8 == 0)
    }

    @Test("END_REQUEST, UNKNOWN_TYPE and GET_VALUES_RESULT bytes")
    func managementAndEndBytes() throws {
        var out = ByteBuffer()
        FastCGIRecordEncoder.writeEndRequest(requestID: 1, appStatus: 0, protocolStatus: .requestComplete, into: &out)
        #expect(out == bytes("01 03 0001 0008 00 00  00000000 00 000000"))
        out.clear()
        FastCGIRecordEncoder.writeEndRequest(requestID: 0x1234, appStatus: 0x0102_0304, protocolStatus: .overloaded, into: &out)
        #expect(out == bytes("01 03 1234 0008 00 00  01020304 02 000000"))
        let end = try FastCGIEndRequest(parsing: out.getSlice(at: 8, length: 8)!)
        #expect(end == FastCGIEndRequest(appStatus: 0x0102_0304, protocolStatus: .overloaded))
        out.clear()
        FastCGIRecordEncoder.writeUnknownType(FastCGIRecordType(rawValue: 42), into: &out)
        #expect(out == bytes("01 0b 0000 0008 00 00  2a 00000000000000"))
        out.clear()
        FastCGIRecordEncoder.writeValues(type: .getValuesResult, [("FCGI_MPXS_CONNS", "1")], into: &out)
        // 2 length bytes + 15 + 1 = 18 bytes of content, 6 of padding.
        #expect(out == bytes("01 0a 0000 0012 06 00  0f 01 464347495f4d5058535f434f4e4e53 31  000000000000"))
    }

    @Test("any padding length is accepted on input")
    func acceptsAnyPadding() throws {
        // A STDIN record with 3 content bytes and 255 bytes of padding, then an empty one.
        var input = bytes("01 05 0001 0003 ff 00 616263")
        input.writeRepeatingByte(0xEE, count: 255)
        input.writeBuffer(&Self.emptyStdin)
        for byteByByte in [false, true] {
            let records = try decodeAll(input, byteByByte: byteByByte)
            #expect(records.count == 2)
            #expect(String(buffer: records[0].content) == "abc")
            #expect(records[1].content.readableBytes == 0)
        }
    }
    nonisolated(unsafe) static var emptyStdin = bytes("01 05 0001 0000 00 00")

    @Test("a version other than 1 is refused")
    func refusesVersion() {
        var buffer = bytes("02 01 0001 0008 00 00 0001000000000000")
        var decoder = FastCGIRecordDecoder()
        #expect(throws: FastCGIProtocolError.unsupportedVersion(2)) { try decoder.decode(buffer: &buffer) }
    }

    @Test("a record cut short by the end of the connection is an error")
    func truncatedRecord() {
        var buffer = bytes("01 05 0001 0010 00 00 6162")
        var decoder = FastCGIRecordDecoder()
        #expect((try? decoder.decode(buffer: &buffer)) == .some(nil))
        #expect(throws: FastCGIProtocolError.truncatedRecord(bytes: 10)) { try decoder.decodeLast(buffer: &buffer, seenEOF: true) }
    }

    @Test("content lengths 65535 and 65536 split at the record limit")
    func streamSplitting() throws {
        for (length, expectedRecords) in [(0, 0), (1, 1), (65528, 1), (65529, 2), (65535, 2), (65536, 2), (131_056, 2), (131_057, 3)] {
            var content = ByteBuffer()
            content.writeRepeatingByte(0x61, count: length)
            var out = ByteBuffer()
            FastCGIRecordEncoder.writeStream(type: .stdout, requestID: 7, content: content, into: &out)
            #expect(out.readableBytes == FastCGIRecordEncoder.streamLength(contentLength: length))
            #expect(out.readableBytes % 8 == 0)
            let records = try decodeAll(out, byteByByte: false)
            #expect(records.count == expectedRecords, "length \(length)")
            #expect(records.allSatisfy { $0.content.readableBytes <= FastCGIRecord.maxContentLength })
            #expect(records.reduce(0) { $0 + $1.content.readableBytes } == length)
        }
    }

    @Test("a record of exactly 65535 content bytes decodes (the u16 maximum)")
    func maximumRecord() throws {
        var input = bytes("01 06 0001 ffff 01 00")
        input.writeRepeatingByte(0x7A, count: 65535 + 1)
        let records = try decodeAll(input, byteByByte: false)
        #expect(records.count == 1)
        #expect(records[0].content.readableBytes == 65535)
    }
}

@Suite("FastCGI name-value pairs")
struct NameValuePairTests {
    @Test("lengths 127 and 128 use one and four bytes", arguments: [0, 1, 127, 128, 65535, 65536])
    func lengthBoundaries(length: Int) throws {
        let name = String(repeating: "N", count: max(length, 1))
        let value = String(repeating: "v", count: length)
        var buffer = ByteBuffer()
        FastCGINameValuePairs.write(name: name, value: value, into: &buffer)
        let nameBytes = name.utf8.count < 128 ? 1 : 4
        let valueBytes = length < 128 ? 1 : 4
        #expect(buffer.readableBytes == nameBytes + valueBytes + name.utf8.count + length)
        if length >= 128 {
            // Four bytes, big-endian, top bit set.
            let wide = buffer.getInteger(at: buffer.readerIndex + nameBytes, as: UInt32.self)!
            #expect(wide == UInt32(length) | 0x8000_0000)
        } else {
            #expect(buffer.getInteger(at: buffer.readerIndex + nameBytes, as: UInt8.self) == UInt8(length))
        }
        var decoder = FastCGINameValuePairDecoder(maxLength: 1 << 20)
        let pairs = try decoder.decodeAll(buffer)
        #expect(pairs.count == 1)
        #expect(String(buffer: pairs[0].name) == name)
        #expect(String(buffer: pairs[0].value) == value)
        // The walk the normalizer uses sees the same pair.
        var walked: [(String, String)] = []
        try decoder.forEachPair(in: buffer) { walked.append((String(decoding: $0, as: UTF8.self), String(decoding: $1, as: UTF8.self))) }
        #expect(walked.count == 1 && walked[0].0 == name && walked[0].1 == value)
    }

    @Test("exact bytes for 127 and 128 byte values")
    func exactBytes() {
        var buffer = ByteBuffer()
        FastCGINameValuePairs.write(name: "A", value: String(repeating: "b", count: 127), into: &buffer)
        #expect(buffer.readableBytesView.prefix(3).elementsEqual([0x01, 0x7F, 0x41]))
        buffer.clear()
        FastCGINameValuePairs.write(name: "A", value: String(repeating: "b", count: 128), into: &buffer)
        #expect(buffer.readableBytesView.prefix(6).elementsEqual([0x01, 0x80, 0x00, 0x00, 0x80, 0x41]))
    }

    @Test("a pair that straddles records decodes once the rest arrives, fed byte by byte")
    func straddlingPairs() throws {
        var stream = ByteBuffer()
        let expected = [("SCRIPT_NAME", "/app"), ("LONG", String(repeating: "x", count: 300)), ("EMPTY", "")]
        for (name, value) in expected { FastCGINameValuePairs.write(name: name, value: value, into: &stream) }
        var decoder = FastCGINameValuePairDecoder(maxLength: 1024)
        var pending = ByteBuffer()
        var got: [(String, String)] = []
        for byte in stream.readableBytesView {
            pending.writeInteger(byte)
            while let pair = try decoder.next(from: &pending) {
                got.append((String(buffer: pair.name), String(buffer: pair.value)))
            }
        }
        #expect(got.map(\.0) == expected.map(\.0))
        #expect(got.map(\.1) == expected.map(\.1))
        #expect(pending.readableBytes == 0)
    }

    @Test("a declared length over the limit is refused before reading (CVE-2025-23016)")
    func lengthLimit() {
        // name length 0x7fffffff, value length 1: a 2 GiB claim in 5 bytes.
        let stream = bytes("ff ffffff 01 41")
        var decoder = FastCGINameValuePairDecoder(maxLength: 128 * 1024)
        #expect(throws: FastCGIProtocolError.nameValueLengthTooLarge(0x7FFF_FFFF, limit: 128 * 1024)) {
            try decoder.decodeAll(stream)
        }
        #expect(throws: FastCGIProtocolError.nameValueLengthTooLarge(0x7FFF_FFFF, limit: 128 * 1024)) {
            try decoder.forEachPair(in: stream) { _, _ in Issue.record("no pair may be seen") }
        }
    }

    @Test("a pair that runs past the end of the stream is an error")
    func truncatedPair() {
        var decoder = FastCGINameValuePairDecoder(maxLength: 1024)
        #expect(throws: FastCGIProtocolError.truncatedNameValuePair) { try decoder.decodeAll(bytes("05 03 4142")) }
        for truncated in ["05 03 4142", "05", "80 00 00", "01 01 41 42 01"] {
            var seen = 0
            #expect(throws: FastCGIProtocolError.truncatedNameValuePair) { try decoder.forEachPair(in: bytes(truncated)) { _, _ in seen += 1 } }
            #expect(seen == (truncated == "01 01 41 42 01" ? 1 : 0))
        }
    }
}
