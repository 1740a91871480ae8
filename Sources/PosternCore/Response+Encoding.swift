import NIOCore

/// The two response heads the protocols use.
///
/// CGI-style (RFC 3875 §6.2), for FastCGI, SCGI and CGI: the status travels as a header,
/// ```
/// Status: 404 Not Found\r\n
/// Content-Type: text/plain\r\n
/// \r\n
/// ```
/// HTTP-style, for uwsgi (mod_proxy_uwsgi fails with 502 on a CGI block): a status line,
/// ```
/// HTTP/1.1 404 Not Found\r\n
/// Content-Type: text/plain\r\n
/// \r\n
/// ```
/// Both check every field with ``HeaderSafety`` first: an unsafe response is never encoded.
extension Response {
    /// Writes the CGI-style head (`Status:` line, fields, blank line).
    public func encodeCGIHead(into buffer: inout ByteBuffer) throws(ResponseError) {
        try HeaderSafety.check(self)
        buffer.writeString("Status: \(status.code) \(status.reasonPhrase)\r\n")
        writeFields(into: &buffer)
    }

    /// Writes an HTTP/1.x status line, fields and blank line.
    public func encodeHTTPHead(version: String = "HTTP/1.1", into buffer: inout ByteBuffer) throws(ResponseError) {
        try HeaderSafety.check(self)
        buffer.writeString("\(version) \(status.code) \(status.reasonPhrase)\r\n")
        writeFields(into: &buffer)
    }

    private func writeFields(into buffer: inout ByteBuffer) {
        for field in headers {
            buffer.writeString(field.name)
            buffer.writeStaticString(": ")
            buffer.writeString(field.value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
    }
}
