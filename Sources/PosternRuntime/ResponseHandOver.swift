import Logging
import NIOCore
import NIOPosix
import PosternCore
import PosternEngine
import Synchronization

/// The rest of a fast-path request on a SwiftNIO channel made from its socket: the response of
/// an application that waited for something, a streamed body, or the part of a response the
/// socket could not take at once (see ``WholeRequestCycle``).
///
/// The request has been read whole, so the channel only writes; a peer that goes away cancels
/// the application's task: a reset, or for FastCGI the end of its input. A half-close after the
/// request (SCGI and uwsgi clients may `shutdown(SHUT_WR)`) is allowed, so over those a peer
/// that closes politely while the application waits is noticed at the first write.
struct ResponseHandOver: Sendable {
    let channel: EventLoopFuture<any Channel>
    let framing: any ResponseFraming
    let logger: Logger

    init(
        socket: CInt,
        group: MultiThreadedEventLoopGroup,
        open: OpenChannels,
        framing: any ResponseFraming,
        peerMayHalfClose: Bool,
        task: Task<Void, Never>?,
        flushTimeout: TimeAmount,
        logger: Logger,
        onClose: @escaping @Sendable () -> Void
    ) {
        self.framing = framing
        self.logger = logger
        open.reserve()
        // Whether the channel's close will call `onClose`: a registration that fails after the
        // initializer closes the channel, and `onClose` must run once.
        let closeWatched = Flag()
        let made = ClientBootstrap(group: group)
            .channelOption(.allowRemoteHalfClosure, value: peerMayHalfClose)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(FlushBeforeCloseHandler(timeout: flushTimeout))
                    try channel.pipeline.syncOperations.addHandler(CancelOnCloseHandler(task: task))
                    open.opened(channel)
                    channel.closeFuture.whenComplete { _ in
                        onClose()
                        open.closed(channel)
                    }
                    closeWatched.value.store(true, ordering: .releasing)
                }
            }
            .withConnectedSocket(NIOBSDSocket.Handle(socket))
            .map { $0 as any Channel }
        made.whenComplete { result in
            // Once, however it went: counted as open from `opened` on.
            open.unreserve()
            guard case .failure(let error) = result else { return }
            logger.warning("cannot serve an accepted connection", metadata: ["error": "\(error)"])
            task?.cancel()
            if !closeWatched.value.load(ordering: .acquiring) { onClose() }
        }
        self.channel = made
    }

    /// Writes the response, then closes; `nil` (the application was cancelled) just closes.
    func send(_ response: Response?) async {
        guard let channel = try? await channel.get() else { return }
        defer { channel.close(promise: nil) }
        guard let response else { return }
        await FramedResponseSender.send(response, framing: framing, to: channel, logger: logger)
    }

    /// Writes bytes already framed (the rest of a response), then closes.
    func sendEncoded(_ bytes: ByteBuffer) {
        channel.whenSuccess { channel in
            channel.writeAndFlush(bytes).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

/// Cancels the application's task when its connection closes (the peer went away).
final class CancelOnCloseHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let task: Task<Void, Never>?

    init(task: Task<Void, Never>?) {
        self.task = task
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // The request was read whole: anything more is not ours to read.
    }

    func channelInactive(context: ChannelHandlerContext) {
        task?.cancel()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// A flag the closures of one hand-over share.
private final class Flag: Sendable {
    let value = Atomic<Bool>(false)
}
