import NIOCore
import PosternCore

/// Writes a ``Response`` as FCGI_STDOUT records (FastCGI 1.0 §5.3), FCGI_STDERR for the
/// environ's error stream, and the stream ends.
///
/// The CGI head goes out with the first body bytes. A byte body is framed with its head in one
/// buffer; a streamed body is framed chunk by chunk, each write waiting for the socket
/// (backpressure through the channel's writability).
final class FastCGIResponseWriter: ResponseBodyWriter, @unchecked Sendable {
    // Used by one task at a time: the request's own.
    let requestID: UInt16
    let handle: FastCGIRequestHandle
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private var pendingHead: ByteBuffer?
    private(set) var stderrUsed = false

    init(handle: FastCGIRequestHandle, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, head: ByteBuffer) {
        self.requestID = handle.requestID
        self.handle = handle
        self.outbound = outbound
        self.pendingHead = head
    }

    /// A streamed chunk: head (first time), queued STDERR, then the chunk as STDOUT records.
    func write(_ buffer: ByteBuffer) async throws {
        guard buffer.readableBytes > 0 else { return }
        var out = ByteBuffer()
        let head = pendingHead?.readableBytes ?? 0
        out.reserveCapacity(FastCGIRecordEncoder.streamLength(contentLength: buffer.readableBytes + head) + 64)
        appendStderr(into: &out)
        if var pending = pendingHead {
            pendingHead = nil
            var chunk = buffer
            pending.writeBuffer(&chunk)
            FastCGIRecordEncoder.writeStream(type: .stdout, requestID: requestID, content: pending, into: &out)
        } else {
            FastCGIRecordEncoder.writeStream(type: .stdout, requestID: requestID, content: buffer, into: &out)
        }
        try await outbound.write(out)
    }

    /// Appends what is still to send before END_REQUEST: the head if no body was written, queued
    /// STDERR, and the empty records that end STDOUT (and STDERR if it was used).
    func finish(into out: inout ByteBuffer) {
        if let pending = pendingHead {
            pendingHead = nil
            FastCGIRecordEncoder.writeStream(type: .stdout, requestID: requestID, content: pending, into: &out)
        }
        appendStderr(into: &out)
        FastCGIRecordEncoder.writeStreamEnd(type: .stdout, requestID: requestID, into: &out)
        if stderrUsed { FastCGIRecordEncoder.writeStreamEnd(type: .stderr, requestID: requestID, into: &out) }
    }

    private func appendStderr(into out: inout ByteBuffer) {
        if let stderr = handle.takeStderr() {
            stderrUsed = true
            FastCGIRecordEncoder.writeStream(type: .stderr, requestID: requestID, content: stderr, into: &out)
        }
    }

    /// The whole response in one buffer, for a byte body: STDERR, STDOUT head and body. The
    /// head is written straight into the record, so no intermediate copy is made.
    static func frameBytes(requestID: UInt16, head: ByteBuffer, body: ByteBuffer, into out: inout ByteBuffer) {
        let total = head.readableBytes + body.readableBytes
        if total <= FastCGIRecord.maxContentLength {
            FastCGIRecordEncoder.writeHeader(type: .stdout, requestID: requestID, contentLength: total, into: &out)
            out.writeImmutableBuffer(head)
            out.writeImmutableBuffer(body)
            FastCGIRecordEncoder.writePadding(contentLength: total, into: &out)
        } else {
            FastCGIRecordEncoder.writeStream(type: .stdout, requestID: requestID, content: head, into: &out)
            FastCGIRecordEncoder.writeStream(type: .stdout, requestID: requestID, content: body, into: &out)
        }
    }
}
