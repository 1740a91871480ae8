import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// A byte-level client for tests that speak malformed protocol on purpose.
public enum RawClient {
    public typealias Connection = NIOAsyncChannel<ByteBuffer, ByteBuffer>

    /// Connects to `address`; the outbound side can be half-closed with `outbound.finish()`.
    public static func connect(to address: SocketAddress) async throws -> Connection {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(to: address) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Connection(
                        wrappingChannelSynchronously: channel,
                        configuration: .init(isOutboundHalfClosureEnabled: true)
                    )
                }
            }
    }

    /// Sends `bytes`, optionally half-closes, and returns everything the server sent until it
    /// closed the connection.
    public static func exchange(_ bytes: [UInt8], with address: SocketAddress, halfClose: Bool = true) async throws -> ByteBuffer {
        let connection = try await connect(to: address)
        return try await connection.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(bytes: bytes))
            if halfClose { outbound.finish() }
            return try await readToEnd(inbound)
        }
    }

    /// Reads until the server closes.
    public static func readToEnd(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>) async throws -> ByteBuffer {
        var all = ByteBuffer()
        do {
            for try await var chunk in inbound { all.writeBuffer(&chunk) }
        } catch let error as IOError where error.errnoCode == ECONNRESET {
            // A reset after a refused request is an acceptable way to close.
        }
        return all
    }
}
