import NIOCore

/// The client side of uwsgi: writes the 4-byte header and the vars block of a modifier1 0 request.
///
/// ```
/// 00 | datasize u16 LE | 00 | (keysize u16 LE, key, valuesize u16 LE, value)*
/// ```
/// Every size is checked to fit its 16-bit field before anything is written.
public enum UWSGIRequestEncoder {
    public static let maxFieldBytes = Int(UInt16.max)

    /// Encodes the packet header and vars for `variables` (CONTENT_LENGTH is set to `contentLength`).
    public static func encodeHead(
        variables: [(name: String, value: String)],
        contentLength: Int
    ) throws(UWSGIError) -> ByteBuffer {
        var vars = ByteBuffer()
        func add(_ key: String, _ value: String) throws(UWSGIError) {
            let keyBytes = key.utf8.count
            let valueBytes = value.utf8.count
            guard keyBytes > 0 else { throw .emptyKey }
            guard let keySize = UInt16(exactly: keyBytes) else { throw .fieldTooLarge(field: "key", size: keyBytes) }
            guard let valueSize = UInt16(exactly: valueBytes) else { throw .fieldTooLarge(field: "value of \(key)", size: valueBytes) }
            vars.writeInteger(keySize, endianness: .little)
            vars.writeString(key)
            vars.writeInteger(valueSize, endianness: .little)
            vars.writeString(value)
        }
        try add("CONTENT_LENGTH", String(contentLength))
        for (name, value) in variables where name != "CONTENT_LENGTH" {
            try add(name, value)
        }
        guard let size = UInt16(exactly: vars.readableBytes) else {
            throw .fieldTooLarge(field: "vars block", size: vars.readableBytes)
        }
        var packet = ByteBuffer()
        packet.reserveCapacity(4 + vars.readableBytes)
        packet.writeInteger(UInt8(0))
        packet.writeInteger(size, endianness: .little)
        packet.writeInteger(UInt8(0))
        packet.writeBuffer(&vars)
        return packet
    }
}
