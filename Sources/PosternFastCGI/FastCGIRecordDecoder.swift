import NIOCore

/// Splits a byte stream into FastCGI records (FastCGI 1.0 §3.3): a pure single-step decoder.
///
/// Bytes in, records out, no I/O: the same value serves the server pipeline (through
/// `ByteToMessageHandler`), the client, and tests that feed it byte by byte. Any padding length
/// is accepted on input (§3.3: "the receiver ... ignores padding"); a version other than 1 is an
/// error. The 16-bit content length and 8-bit padding bound a record at 65,798 bytes, so nothing
/// is read before the whole record is present.
public struct FastCGIRecordDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = FastCGIRecord

    public init() {}

    public mutating func decode(buffer: inout ByteBuffer) throws -> FastCGIRecord? {
        guard buffer.readableBytes >= FastCGIRecord.headerLength else { return nil }
        let start = buffer.readerIndex
        guard let version = buffer.getInteger(at: start, as: UInt8.self),
            let type = buffer.getInteger(at: start + 1, as: UInt8.self),
            let requestID = buffer.getInteger(at: start + 2, as: UInt16.self),
            let contentLength = buffer.getInteger(at: start + 4, as: UInt16.self),
            let paddingLength = buffer.getInteger(at: start + 6, as: UInt8.self)
        else { return nil }
        guard version == FastCGIRecord.version else {
            throw FastCGIProtocolError.unsupportedVersion(version)
        }
        let total = FastCGIRecord.headerLength + Int(contentLength) + Int(paddingLength)
        guard buffer.readableBytes >= total else { return nil }
        let content = buffer.getSlice(at: start + FastCGIRecord.headerLength, length: Int(contentLength))!
        buffer.moveReaderIndex(forwardBy: total)
        return FastCGIRecord(type: FastCGIRecordType(rawValue: type), requestID: requestID, content: content)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> FastCGIRecord? {
        if let record = try decode(buffer: &buffer) { return record }
        if seenEOF, buffer.readableBytes > 0 {
            let pending = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: pending)
            throw FastCGIProtocolError.truncatedRecord(bytes: pending)
        }
        return nil
    }
}
