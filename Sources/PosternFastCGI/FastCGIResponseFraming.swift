import NIOCore
import PosternCore
import PosternEngine

/// A FastCGI response (§5.3, §5.5): FCGI_STDERR (what the application wrote to its error
/// stream), FCGI_STDOUT with the CGI-style head and body, the empty records that end both
/// streams, and — on a connection that carries this one request — FCGI_END_REQUEST.
///
/// On a kept connection (KEEP_CONN) END_REQUEST is the request runner's: it is sent only once
/// the request's input is all in (``FastCGIRequestRunner``), after what this framing writes.
struct FastCGIResponseFraming: ResponseFraming {
    let requestID: UInt16
    let stderr: FastCGIStderrQueue
    /// Whether ``writeEnd(into:)`` ends the request too (FCGI_END_REQUEST).
    let endsRequest: Bool

    func writeHead(_ response: Response, into buffer: inout ByteBuffer) throws(ResponseError) {
        var head = ByteBuffer()
        try response.encodeCGIHead(into: &head)
        writeBody(head, into: &buffer)
    }

    func writeBody(_ bytes: ByteBuffer, into buffer: inout ByteBuffer) {
        writePendingStderr(into: &buffer)
        guard bytes.readableBytes > 0 else { return }
        FastCGIRecordEncoder.writeStream(type: .stdout, requestID: requestID, content: bytes, into: &buffer)
    }

    func writeEnd(into buffer: inout ByteBuffer) {
        if writePendingStderr(into: &buffer) {
            FastCGIRecordEncoder.writeStreamEnd(type: .stderr, requestID: requestID, into: &buffer)
        }
        FastCGIRecordEncoder.writeStreamEnd(type: .stdout, requestID: requestID, into: &buffer)
        if endsRequest {
            FastCGIRecordEncoder.writeEndRequest(requestID: requestID, appStatus: 0, protocolStatus: .requestComplete, into: &buffer)
        }
    }

    func writeFailure(_ reason: String, into buffer: inout ByteBuffer) {
        FastCGIRecordEncoder.writeStream(
            type: .stderr, requestID: requestID, content: ByteBuffer(string: "postern: response body failed: \(reason)\n"), into: &buffer)
    }

    /// Head and body in one FCGI_STDOUT record when they fit (no intermediate copy of the body).
    func writeWhole(_ response: Response, body: ByteBuffer, into buffer: inout ByteBuffer) throws(ResponseError) {
        var head = ByteBuffer()
        try response.encodeCGIHead(into: &head)
        buffer.reserveCapacity(buffer.readableBytes + head.readableBytes + body.readableBytes + 64)
        writePendingStderr(into: &buffer)
        let total = head.readableBytes + body.readableBytes
        if total <= FastCGIRecord.maxContentLength {
            FastCGIRecordEncoder.writeHeader(type: .stdout, requestID: requestID, contentLength: total, into: &buffer)
            buffer.writeImmutableBuffer(head)
            buffer.writeImmutableBuffer(body)
            FastCGIRecordEncoder.writePadding(contentLength: total, into: &buffer)
        } else {
            FastCGIRecordEncoder.writeStream(type: .stdout, requestID: requestID, content: head, into: &buffer)
            FastCGIRecordEncoder.writeStream(type: .stdout, requestID: requestID, content: body, into: &buffer)
        }
        writeEnd(into: &buffer)
    }

    /// Writes queued FCGI_STDERR; returns whether the stream was used at all.
    @discardableResult
    private func writePendingStderr(into buffer: inout ByteBuffer) -> Bool {
        let (pending, used) = stderr.take()
        if let pending {
            FastCGIRecordEncoder.writeStream(type: .stderr, requestID: requestID, content: pending, into: &buffer)
        }
        return used
    }
}
