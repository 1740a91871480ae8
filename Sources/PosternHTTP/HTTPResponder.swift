import NIOCore
import NIOHTTP1
import PosternCore
import PosternEngine

/// Writes a ``Response`` as HTTP/1.1 parts, framing the body by Content-Length, chunked encoding
/// or connection close.
struct HTTPResponder: Sendable {
    let head: HTTPRequestHead
    let context: ConnectionContext
    let outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>

    /// Sends `response`; returns whether the connection may stay open.
    func send(_ response: Response, forceClose: Bool = false) async -> Bool {
        var keepAlive = head.isKeepAlive && !forceClose && !context.isDraining
        let code = response.status.code
        let bodiless = head.method == .HEAD || (100..<200).contains(code) || code == 204 || code == 304
        var headers = HTTPHeaders()
        headers.reserveCapacity(response.headers.count + 2)
        for field in response.headers {
            headers.add(name: field.name, value: field.value)
        }
        let declaredLength = headers.first(name: "content-length").flatMap(Int.init)
        var chunked = false
        if declaredLength == nil, code != 204, code != 304, !(100..<200).contains(code) {
            if let length = response.body.knownLength {
                headers.add(name: "Content-Length", value: String(length))
            } else if head.version.major == 1 && head.version.minor >= 1 {
                headers.add(name: "Transfer-Encoding", value: "chunked")
                chunked = true
            } else {
                keepAlive = false
            }
        }
        if !keepAlive {
            headers.replaceOrAdd(name: "Connection", value: "close")
        } else if head.version.minor == 0 {
            headers.replaceOrAdd(name: "Connection", value: "keep-alive")
        }
        let responseHead = HTTPResponseHead(
            version: head.version,
            status: HTTPResponseStatus(statusCode: code, reasonPhrase: response.status.reasonPhrase),
            headers: headers
        )
        do {
            // A body in hand (the common case) goes out with its head and end in one write:
            // one flush, one write(2) per response, where three writes cost two.
            if case .bytes(let body) = response.body.storage {
                var parts: [HTTPServerResponsePart] = [.head(responseHead)]
                if !bodiless && body.readableBytes > 0 { parts.append(.body(.byteBuffer(body))) }
                let expected = declaredLength ?? body.readableBytes
                guard bodiless || expected == body.readableBytes else {
                    try await outbound.write(contentsOf: parts)
                    context.logger.error(
                        "response body length differs from Content-Length; closing", metadata: ["declared": "\(expected)", "written": "\(body.readableBytes)"])
                    return false
                }
                parts.append(.end(nil))
                try await outbound.write(contentsOf: parts)
                return keepAlive
            }
            try await outbound.write(.head(responseHead))
            if !bodiless {
                let writer = HTTPBodyWriter(outbound: outbound)
                try await response.body.write(to: writer)
                let expected = declaredLength ?? response.body.knownLength
                if let expected, writer.count != expected {
                    context.logger.error(
                        "response body length differs from Content-Length; closing", metadata: ["declared": "\(expected)", "written": "\(writer.count)"])
                    return false
                }
            }
            try await outbound.write(.end(nil))
        } catch is CancellationError {
            // The client went away (the connection's task was cancelled): nobody to tell.
            context.logger.debug("response write cancelled")
            return false
        } catch {
            // Headers are out: the only honest signal left is to close without the final chunk.
            if PeerGone.describes(error) {
                context.logger.notice("the client went away mid-response", metadata: ["error": "\(error)"])
            } else {
                context.logger.error("response failed mid-body; closing", metadata: ["error": "\(error)", "chunked": "\(chunked)"])
            }
            return false
        }
        return keepAlive
    }
}

/// The application's streamed body, written as HTTP body parts with backpressure.
final class HTTPBodyWriter: ResponseBodyWriter, @unchecked Sendable {
    let outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    // Written only from the one task that writes the body.
    private(set) var count = 0

    init(outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) {
        self.outbound = outbound
    }

    func write(_ buffer: ByteBuffer) async throws {
        guard buffer.readableBytes > 0 else { return }
        count += buffer.readableBytes
        try await outbound.write(.body(.byteBuffer(buffer)))
    }
}
