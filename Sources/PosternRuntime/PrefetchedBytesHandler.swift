import NIOCore

/// Gives a channel made from an already-accepted socket the bytes the engine's fast path read
/// before handing the connection over, as if the channel had read them itself: first in the
/// pipeline, it fires them once the channel is active, then removes itself.
final class PrefetchedBytesHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var bytes: ByteBuffer?

    init(_ bytes: ByteBuffer) {
        self.bytes = bytes.readableBytes > 0 ? bytes : nil
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        if let bytes {
            self.bytes = nil
            context.fireChannelRead(wrapInboundOut(bytes))
            context.fireChannelReadComplete()
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
