import NIOCore

/// Writes FastCGI records into a buffer (FastCGI 1.0 §3.3), content padded to a multiple of 8.
///
/// Streams longer than one record are split into records of at most 65,528 bytes (65535 rounded
/// down to a multiple of 8, so that a full record needs no padding).
public enum FastCGIRecordEncoder {
    /// The largest content this encoder puts in one stream record: 8-aligned, under 65535.
    public static let maxStreamChunk = 65528

    private static let zeros: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0]

    /// Writes one record with `contentLength` bytes of content from `content`.
    @inlinable
    public static func writeHeader(type: FastCGIRecordType, requestID: UInt16, contentLength: Int, into buffer: inout ByteBuffer) {
        precondition(contentLength >= 0 && contentLength <= FastCGIRecord.maxContentLength)
        let padding = FastCGIRecord.paddingLength(for: contentLength)
        buffer.writeMultipleIntegers(
            FastCGIRecord.version, type.rawValue, requestID, UInt16(truncatingIfNeeded: contentLength), UInt8(truncatingIfNeeded: padding), UInt8(0)
        )
    }

    /// Writes padding for a record of `contentLength` bytes.
    public static func writePadding(contentLength: Int, into buffer: inout ByteBuffer) {
        let padding = FastCGIRecord.paddingLength(for: contentLength)
        if padding > 0 { buffer.writeBytes(zeros[0..<padding]) }
    }

    /// Writes one whole record.
    public static func write(_ record: FastCGIRecord, into buffer: inout ByteBuffer) {
        writeHeader(type: record.type, requestID: record.requestID, contentLength: record.content.readableBytes, into: &buffer)
        buffer.writeImmutableBuffer(record.content)
        writePadding(contentLength: record.content.readableBytes, into: &buffer)
    }

    /// Writes `content` as a stream's records (as many as it needs; none when it is empty).
    public static func writeStream(type: FastCGIRecordType, requestID: UInt16, content: ByteBuffer, into buffer: inout ByteBuffer) {
        var content = content
        while content.readableBytes > 0 {
            let length = min(content.readableBytes, maxStreamChunk)
            writeHeader(type: type, requestID: requestID, contentLength: length, into: &buffer)
            let slice = content.readSlice(length: length)!
            buffer.writeImmutableBuffer(slice)
            writePadding(contentLength: length, into: &buffer)
        }
    }

    /// Writes the empty record that ends a stream (§3.3).
    public static func writeStreamEnd(type: FastCGIRecordType, requestID: UInt16, into buffer: inout ByteBuffer) {
        writeHeader(type: type, requestID: requestID, contentLength: 0, into: &buffer)
    }

    /// Bytes that `writeStream` uses for `contentLength` bytes of content.
    public static func streamLength(contentLength: Int) -> Int {
        let full = contentLength / maxStreamChunk
        let rest = contentLength % maxStreamChunk
        return full * (maxStreamChunk + 8) + (rest > 0 ? 8 + rest + FastCGIRecord.paddingLength(for: rest) : 0)
    }

    /// FCGI_BEGIN_REQUEST (§5.1):
    /// ```
    /// role u16 BE | flags u8 (FCGI_KEEP_CONN = 1) | reserved[5]
    /// ```
    public static func writeBeginRequest(requestID: UInt16, role: FastCGIRole, keepConnection: Bool, into buffer: inout ByteBuffer) {
        writeHeader(type: .beginRequest, requestID: requestID, contentLength: 8, into: &buffer)
        buffer.writeMultipleIntegers(role.rawValue, UInt8(keepConnection ? 1 : 0), UInt8(0), UInt32(0))
    }

    /// FCGI_END_REQUEST (§5.5):
    /// ```
    /// appStatus u32 BE | protocolStatus u8 | reserved[3]
    /// ```
    public static func writeEndRequest(requestID: UInt16, appStatus: UInt32, protocolStatus: FastCGIProtocolStatus, into buffer: inout ByteBuffer) {
        writeHeader(type: .endRequest, requestID: requestID, contentLength: 8, into: &buffer)
        buffer.writeMultipleIntegers(appStatus, protocolStatus.rawValue, UInt8(0), UInt16(0))
    }

    /// FCGI_UNKNOWN_TYPE (§4.2): `type u8 | reserved[7]`.
    public static func writeUnknownType(_ type: FastCGIRecordType, into buffer: inout ByteBuffer) {
        writeHeader(type: .unknownType, requestID: FastCGIRecord.managementID, contentLength: 8, into: &buffer)
        buffer.writeMultipleIntegers(type.rawValue, UInt8(0), UInt16(0), UInt32(0))
    }

    /// A GET_VALUES or GET_VALUES_RESULT record holding `pairs` (§4.1).
    public static func writeValues(type: FastCGIRecordType, _ pairs: [(name: String, value: String)], into buffer: inout ByteBuffer) {
        var content = ByteBuffer()
        for pair in pairs { FastCGINameValuePairs.write(name: pair.name, value: pair.value, into: &content) }
        write(FastCGIRecord(type: type, requestID: FastCGIRecord.managementID, content: content), into: &buffer)
    }
}
