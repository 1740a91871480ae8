import NIOCore
import NIOHTTP1
import NIOPosix
import PosternClient
import PosternCore

/// An HTTP/1.1 client (`postern request http://…`, the tests): sends one request with
/// `Connection: close` on SwiftNIO's NIOHTTP1 client codec (RFC 9112) and collects the response.
///
/// The request carries what a browser or `curl` would: the method and target, `Host`, the
/// caller's header fields, and `Content-Length` for the body. The response may be
/// `Content-Length`-framed, chunked or close-delimited; the codec decodes all three, and pairs a
/// HEAD request with its body-less response.
public enum HTTPClient {
    /// Why a response could not be read.
    public enum Failure: Error, Sendable, CustomStringConvertible {
        case noResponse
        case bodyTooLarge(limit: Int)

        public var description: String {
            switch self {
            case .noResponse: return "the server closed the connection without a complete response"
            case .bodyTooLarge(let limit): return "the response body exceeds \(limit) bytes"
            }
        }
    }

    /// Sends `request` (its `target`, `method`, `headers` and `body`) to the HTTP server at `address`.
    /// `host` is the `Host` field unless the request's headers have one.
    public static func send(
        _ request: ClientRequest,
        target: String,
        to address: SocketAddress,
        host: String,
        maxBodyBytes: Int = 1 << 30,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        setup: ClientChannelSetup? = nil
    ) async throws -> ClientResponse {
        let channel = try await ClientBootstrap(group: group).connect(to: address) { channel in
            channel.eventLoop.makeCompletedFuture {
                try setup?(channel)
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
            }
        }
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: request.method), uri: target)
        // The caller's own Host field (`-H 'Host: …'`) wins over the address.
        if !request.headers.contains(where: { $0.name.caseInsensitiveEquals("Host") }) {
            head.headers.add(name: "Host", value: host)
        }
        for field in request.headers where !field.name.caseInsensitiveEquals("Content-Length") {
            head.headers.add(name: field.name, value: field.value)
        }
        if request.body.readableBytes > 0 || ["POST", "PUT", "PATCH"].contains(request.method.uppercased()) {
            head.headers.add(name: "Content-Length", value: String(request.body.readableBytes))
        }
        head.headers.replaceOrAdd(name: "Connection", value: "close")
        let requestHead = head
        return try await channel.executeThenClose { inbound, outbound in
            try await withThrowingTaskGroup(of: Void.self) { group in
                // Writing runs beside reading: a server that answers (or echoes) before it has
                // read the whole body must not deadlock against this client.
                group.addTask {
                    try await outbound.write(.head(requestHead))
                    var body = request.body
                    while let chunk = body.readSlice(length: min(64 * 1024, body.readableBytes)), chunk.readableBytes > 0 {
                        try await outbound.write(.body(.byteBuffer(chunk)))
                    }
                    try await outbound.write(.end(nil))
                }
                var responseHead: HTTPResponseHead?
                var responseBody = ByteBuffer()
                var complete = false
                for try await part in inbound {
                    switch part {
                    case .head(let head) where head.status.code < 200:
                        continue  // 1xx interim responses (100 Continue) precede the final one.
                    case .head(let head):
                        responseHead = head
                    case .body(var chunk):
                        guard responseBody.readableBytes + chunk.readableBytes <= maxBodyBytes else {
                            group.cancelAll()
                            throw Failure.bodyTooLarge(limit: maxBodyBytes)
                        }
                        responseBody.writeBuffer(&chunk)
                    case .end:
                        complete = responseHead != nil
                    }
                    if complete { break }
                }
                // The server may answer before reading the whole body and close: the rest of the
                // body is not wanted, and a failed write after a complete response is not the
                // caller's problem.
                if complete { group.cancelAll() }
                do {
                    try await group.waitForAll()
                } catch {}
                guard complete, let responseHead else { throw Failure.noResponse }
                var headers = ResponseHeaders()
                for field in responseHead.headers { headers.add(name: field.name, value: field.value) }
                return ClientResponse(
                    status: ResponseStatus(code: Int(responseHead.status.code), reasonPhrase: responseHead.status.reasonPhrase),
                    headers: headers,
                    body: responseBody
                )
            }
        }
    }
}
