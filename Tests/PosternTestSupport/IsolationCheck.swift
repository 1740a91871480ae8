import NIOCore

/// Checks that malformed requests close only their own connection: a good request is started
/// on one connection (its first `split` bytes sent), every malformed input is sent on a
/// connection of its own (then half-closed), and the good request is finished afterwards.
public enum IsolationCheck {
    public struct Result: Sendable {
        /// What the server sent on each malformed connection before closing it.
        public var malformedReplies: [ByteBuffer]
        /// The full reply to the good request.
        public var goodReply: ByteBuffer
    }

    public static func run(good: [UInt8], split: Int, malformed: [[UInt8]], address: SocketAddress) async throws -> Result {
        let connection = try await RawClient.connect(to: address)
        return try await connection.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(bytes: good[..<split]))
            var replies: [ByteBuffer] = []
            for bytes in malformed {
                replies.append(try await RawClient.exchange(bytes, with: address))
            }
            try await outbound.write(ByteBuffer(bytes: good[split...]))
            return Result(malformedReplies: replies, goodReply: try await RawClient.readToEnd(inbound))
        }
    }
}

extension ByteBuffer {
    /// The readable bytes as text (for comparisons in tests).
    public var text: String { String(decoding: readableBytesView, as: UTF8.self) }
}
