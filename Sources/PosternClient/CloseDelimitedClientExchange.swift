import NIOCore
import NIOPosix
import PosternCore

/// The client side of a protocol whose response ends when the server closes the connection
/// (SCGI, uwsgi): write the request head and body while reading the response, parse the
/// response head, collect the body until end of stream.
///
/// Writing and reading run concurrently: a server that echoes the body as it reads it (with
/// backpressure) would otherwise deadlock against a client that first writes everything.
public enum CloseDelimitedClientExchange {
    /// Why a response could not be read.
    public enum Failure: Error, Sendable, CustomStringConvertible {
        case head(CGIResponseHeadParser.ParseError)
        case bodyTooLarge(limit: Int)

        public var description: String {
            switch self {
            case .head(let error): return "invalid response head: \(error)"
            case .bodyTooLarge(let limit): return "the response body exceeds \(limit) bytes"
            }
        }
    }

    /// Connects to `address` (TCP or a unix socket), sends `head` then `body`, and reads the
    /// whole response: an SCGI or uwsgi client's exchange, once for both.
    public static func send(
        head: ByteBuffer,
        body: ByteBuffer,
        parser: CGIResponseHeadParser,
        to address: SocketAddress,
        group: any EventLoopGroup,
        setup: ClientChannelSetup? = nil
    ) async throws -> ClientResponse {
        let channel = try await ClientBootstrap(group: group).connect(to: address) { channel in
            channel.eventLoop.makeCompletedFuture {
                try setup?(channel)
                return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
        return try await run(channel, head: head, body: body, parser: parser)
    }

    /// Sends `head` then `body` on `channel` and reads the whole response.
    public static func run(
        _ channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>,
        head: ByteBuffer,
        body: ByteBuffer,
        parser: CGIResponseHeadParser,
        maxBodyBytes: Int = 1 << 30
    ) async throws -> ClientResponse {
        try await channel.executeThenClose { inbound, outbound in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    var request = head
                    var body = body
                    // A small body goes out with the head in one write.
                    if body.readableBytes <= 16 * 1024 {
                        request.writeBuffer(&body)
                        try await outbound.write(request)
                    } else {
                        try await outbound.write(request)
                        while let chunk = body.readSlice(length: min(64 * 1024, body.readableBytes)), chunk.readableBytes > 0 {
                            try await outbound.write(chunk)
                        }
                    }
                }
                var parser = parser
                var parsedHead: CGIResponseHeadParser.Head?
                var responseBody = ByteBuffer()
                do {
                    for try await var chunk in inbound {
                        if parsedHead == nil {
                            switch try parser.feed(chunk) {
                            case .needMore:
                                continue
                            case .head(let head, let rest):
                                parsedHead = head
                                chunk = rest
                            }
                        }
                        guard responseBody.readableBytes + chunk.readableBytes <= maxBodyBytes else {
                            throw Failure.bodyTooLarge(limit: maxBodyBytes)
                        }
                        responseBody.writeBuffer(&chunk)
                    }
                    if parsedHead == nil { try parser.finish() }
                } catch let error as CGIResponseHeadParser.ParseError {
                    group.cancelAll()
                    throw Failure.head(error)
                }
                // The server may answer before reading the whole body and close: a failed write
                // after a complete response is not the caller's problem.
                do {
                    try await group.waitForAll()
                } catch {}
                guard let parsedHead else { throw Failure.head(.truncated) }
                return ClientResponse(status: parsedHead.status, headers: parsedHead.headers, body: responseBody)
            }
        }
    }
}
