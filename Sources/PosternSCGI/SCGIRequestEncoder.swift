import NIOCore

/// The client side of SCGI: writes a request's netstring of headers, CONTENT_LENGTH first and
/// `SCGI` `1` second, as the spec requires.
///
/// ```
/// <len> ":" CONTENT_LENGTH\0 <n>\0 SCGI\0 1\0 NAME\0 VALUE\0 ... ","
/// ```
public enum SCGIRequestEncoder {
    /// Encodes the head for `variables` and a body of `contentLength` bytes. CONTENT_LENGTH and
    /// SCGI in `variables` are replaced by the framing's own.
    public static func encodeHead(
        variables: [(name: String, value: String)],
        contentLength: Int
    ) throws(SCGIError) -> ByteBuffer {
        var content = ByteBuffer()
        func add(_ name: String, _ value: String) throws(SCGIError) {
            guard !name.isEmpty else { throw .emptyHeaderName }
            guard !name.utf8.contains(0), !value.utf8.contains(0) else { throw .headerNameNUL }
            content.writeString(name)
            content.writeInteger(UInt8(0))
            content.writeString(value)
            content.writeInteger(UInt8(0))
        }
        try add("CONTENT_LENGTH", String(contentLength))
        try add("SCGI", "1")
        for (name, value) in variables where name != "CONTENT_LENGTH" && name != "SCGI" {
            try add(name, value)
        }
        var head = ByteBuffer()
        head.reserveCapacity(content.readableBytes + 12)
        head.writeString(String(content.readableBytes))
        head.writeStaticString(":")
        head.writeBuffer(&content)
        head.writeStaticString(",")
        return head
    }
}
