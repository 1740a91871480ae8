import NIOCore

/// A ``ResponseBodyWriter`` that writes raw bytes to a connection with backpressure: the body of
/// an SCGI or uwsgi response, which is framed by the connection's close.
public struct OutboundBodyWriter: ResponseBodyWriter {
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

    public init(outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.outbound = outbound
    }

    public func write(_ buffer: ByteBuffer) async throws {
        guard buffer.readableBytes > 0 else { return }
        try await outbound.write(buffer)
    }
}
