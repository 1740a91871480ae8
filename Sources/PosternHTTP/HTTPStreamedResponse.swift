import Logging
import NIOCore
import NIOHTTP1
import PosternCore
import PosternEngine

/// Writes a response whose body streams (the application writes it in chunks) from the
/// request's task, each chunk awaited (backpressure); a body in hand is written by
/// ``HTTPRequestHandler`` on the event loop in one flush.
enum HTTPStreamedResponse {
    /// Sends the response; returns whether the connection may stay open.
    static func send(_ response: Response, plan: HTTPResponsePlan, channel: any Channel, logger: Logger) async -> Bool {
        do {
            try await channel.writeAndFlush(HTTPServerResponsePart.head(plan.head)).get()
            if !plan.bodiless {
                let writer = HTTPBodyWriter(channel: channel)
                try await response.body.write(to: writer)
                let expected = plan.declaredLength ?? response.body.knownLength
                if let expected, writer.count != expected {
                    logger.error(
                        "response body length differs from Content-Length; closing", metadata: ["declared": "\(expected)", "written": "\(writer.count)"])
                    return false
                }
            }
            try await channel.writeAndFlush(HTTPServerResponsePart.end(nil)).get()
        } catch is CancellationError {
            // The client went away (the request's task was cancelled): nobody to tell.
            logger.debug("response write cancelled")
            return false
        } catch {
            // Headers are out: the only honest signal left is to close without the final chunk.
            if PeerGone.describes(error) {
                logger.notice("the client went away mid-response", metadata: ["error": "\(error)"])
            } else {
                logger.error("response failed mid-body; closing", metadata: ["error": "\(error)", "chunked": "\(plan.chunked)"])
            }
            return false
        }
        return plan.keepAlive
    }
}

/// The application's streamed body, written as HTTP body parts, each awaited.
final class HTTPBodyWriter: ResponseBodyWriter, @unchecked Sendable {
    let channel: any Channel
    // Written only from the one task that writes the body.
    private(set) var count = 0

    init(channel: any Channel) {
        self.channel = channel
    }

    func write(_ buffer: ByteBuffer) async throws {
        guard buffer.readableBytes > 0 else { return }
        count += buffer.readableBytes
        try await channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(buffer))).get()
    }
}
