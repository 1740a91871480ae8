import NIOCore

/// FastCGI name-value pairs (FastCGI 1.0 §3.4): the body of PARAMS, GET_VALUES and GET_VALUES_RESULT.
///
/// Each length is one byte when below 128, else four bytes big-endian with the top bit set:
/// ```
/// nameLength < 128:   0nnnnnnn
/// nameLength >= 128:  1nnnnnnn nnnnnnnn nnnnnnnn nnnnnnnn     (31 bits)
/// then valueLength the same way, then nameData, then valueData.
/// ```
/// The PARAMS stream is the concatenation of its records' contents, so a pair may straddle
/// records; the decoder works on the joined stream.
public enum FastCGINameValuePairs {
    /// Appends one pair.
    public static func write<Name: Collection<UInt8>, Value: Collection<UInt8>>(name: Name, value: Value, into buffer: inout ByteBuffer) {
        writeLength(name.count, into: &buffer)
        writeLength(value.count, into: &buffer)
        buffer.writeBytes(name)
        buffer.writeBytes(value)
    }

    public static func write(name: String, value: String, into buffer: inout ByteBuffer) {
        write(name: name.utf8, value: value.utf8, into: &buffer)
    }

    /// Bytes one pair takes on the wire.
    public static func encodedLength(nameLength: Int, valueLength: Int) -> Int {
        (nameLength < 128 ? 1 : 4) + (valueLength < 128 ? 1 : 4) + nameLength + valueLength
    }

    static func writeLength(_ length: Int, into buffer: inout ByteBuffer) {
        precondition(length >= 0 && length <= Int(Int32.max), "a FastCGI name or value is at most 2^31-1 bytes")
        if length < 128 {
            buffer.writeInteger(UInt8(length))
        } else {
            buffer.writeInteger(UInt32(length) | 0x8000_0000)
        }
    }
}

/// Reads name-value pairs from a buffer: a pure single-step decoder (§3.4).
///
/// ``next(from:)`` returns a pair, or `nil` when the buffer ends before the next pair does (the
/// rest of the pair straddles into a later record); the reader index only moves past whole
/// pairs. Each declared length is checked against `maxLength` before any byte of it is read.
public struct FastCGINameValuePairDecoder: Sendable {
    public let maxLength: Int

    public init(maxLength: Int) {
        self.maxLength = maxLength
    }

    public mutating func next(from buffer: inout ByteBuffer) throws(FastCGIProtocolError) -> (name: ByteBuffer, value: ByteBuffer)? {
        var cursor = buffer.readerIndex
        guard let nameLength = try readLength(buffer, at: &cursor),
            let valueLength = try readLength(buffer, at: &cursor)
        else { return nil }
        let available = buffer.writerIndex - cursor
        guard available >= nameLength, available - nameLength >= valueLength else { return nil }
        let name = buffer.getSlice(at: cursor, length: nameLength)!
        let value = buffer.getSlice(at: cursor + nameLength, length: valueLength)!
        buffer.moveReaderIndex(to: cursor + nameLength + valueLength)
        return (name, value)
    }

    /// Decodes every pair of a complete stream; leftover bytes are a truncated pair.
    public mutating func decodeAll(_ stream: ByteBuffer) throws(FastCGIProtocolError) -> [(name: ByteBuffer, value: ByteBuffer)] {
        var stream = stream
        var pairs: [(name: ByteBuffer, value: ByteBuffer)] = []
        while let pair = try next(from: &stream) { pairs.append(pair) }
        guard stream.readableBytes == 0 else { throw .truncatedNameValuePair }
        return pairs
    }

    /// Calls `body` with each pair of a complete stream, as bytes in the stream (valid only
    /// during the call; nothing is copied or allocated); leftover bytes are a truncated pair.
    public func forEachPair(
        in stream: ByteBuffer,
        _ body: (_ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) -> Void
    ) throws(FastCGIProtocolError) {
        try stream.withUnsafeReadableBytes { raw throws(FastCGIProtocolError) in
            let bytes = raw.assumingMemoryBound(to: UInt8.self)
            var cursor = 0
            func length() throws(FastCGIProtocolError) -> Int {
                guard cursor < bytes.count else { throw .truncatedNameValuePair }
                let first = bytes[cursor]
                if first & 0x80 == 0 {
                    cursor += 1
                    return Int(first)
                }
                guard bytes.count - cursor >= 4 else { throw .truncatedNameValuePair }
                let length = Int(first & 0x7F) << 24 | Int(bytes[cursor + 1]) << 16 | Int(bytes[cursor + 2]) << 8 | Int(bytes[cursor + 3])
                guard length <= maxLength else { throw .nameValueLengthTooLarge(length, limit: maxLength) }
                cursor += 4
                return length
            }
            while cursor < bytes.count {
                let nameLength = try length()
                let valueLength = try length()
                let available = bytes.count - cursor
                guard available >= nameLength, available - nameLength >= valueLength else { throw .truncatedNameValuePair }
                body(
                    UnsafeBufferPointer(rebasing: bytes[cursor..<cursor + nameLength]),
                    UnsafeBufferPointer(rebasing: bytes[cursor + nameLength..<cursor + nameLength + valueLength]))
                cursor += nameLength + valueLength
            }
        }
    }

    private func readLength(_ buffer: ByteBuffer, at cursor: inout Int) throws(FastCGIProtocolError) -> Int? {
        guard let first = buffer.getInteger(at: cursor, as: UInt8.self) else { return nil }
        if first & 0x80 == 0 {
            cursor += 1
            return Int(first)
        }
        guard let wide = buffer.getInteger(at: cursor, as: UInt32.self) else { return nil }
        let length = Int(wide & 0x7FFF_FFFF)
        guard length <= maxLength else { throw .nameValueLengthTooLarge(length, limit: maxLength) }
        cursor += 4
        return length
    }
}
