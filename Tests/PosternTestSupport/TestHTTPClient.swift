import NIOCore
import NIOPosix
import PosternClient
import PosternCore

/// A minimal HTTP/1.1 client for the live tests: sends a ``ClientRequest`` with
/// `Connection: close` and an explicit `Content-Length`, reads until the server closes.
/// Responses framed by Content-Length are cut to it; a chunked response is refused (the demo
/// apps always declare their length).
public enum TestHTTPClient {
    /// - Parameter lengthOnEmptyBody: send `Content-Length: 0` for an empty body (curl does not
    ///   on a GET; the cross-protocol comparison does, as the CGI clients always send one).
    public static func send(
        _ request: ClientRequest,
        to address: SocketAddress,
        host: String = "localhost",
        lengthOnEmptyBody: Bool = true
    ) async throws -> ClientResponse {
        var head = ByteBuffer()
        let target = percentEncoded(request.scriptName + request.pathInfo) + (request.query.isEmpty ? "" : "?" + request.query)
        head.writeString("\(request.method) \(target) HTTP/1.1\r\nHost: \(host)\r\n")
        for header in request.headers where !header.name.caseInsensitiveEquals("Content-Length") {
            head.writeString("\(header.name): \(header.value)\r\n")
        }
        if request.body.readableBytes > 0 || lengthOnEmptyBody {
            head.writeString("Content-Length: \(request.body.readableBytes)\r\n")
        }
        head.writeString("Connection: close\r\n\r\n")
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(to: address) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
        var response = try await CloseDelimitedClientExchange.run(
            channel, head: head, body: request.body, parser: CGIResponseHeadParser(mode: .httpStatusLine))
        if let coding = response.headers["Transfer-Encoding"] {
            guard coding.lowercased() == "chunked" else { throw TestFailure("Transfer-Encoding \(coding)") }
            response.body = try dechunked(response.body)
            return response
        }
        if let length = response.headers["Content-Length"].flatMap({ Int($0) }) {
            guard response.body.readableBytes >= length else {
                throw TestFailure("HTTP body of \(response.body.readableBytes) bytes, Content-Length \(length)")
            }
            response.body = response.body.getSlice(at: response.body.readerIndex, length: length)!
        }
        return response
    }

    /// The body of a chunked message (RFC 9112 §7.1), trailers ignored.
    static func dechunked(_ body: ByteBuffer) throws -> ByteBuffer {
        var input = body
        var output = ByteBuffer()
        while true {
            guard let lineEnd = input.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else { throw TestFailure("chunk size line missing") }
            let line = input.readString(length: lineEnd - input.readerIndex + 1)!
            let sizeText = line.prefix { $0.isHexDigit }
            guard let size = Int(sizeText, radix: 16) else { throw TestFailure("bad chunk size \(line)") }
            if size == 0 { return output }
            guard var chunk = input.readSlice(length: size), input.readBytes(length: 2) == [13, 10] else {
                throw TestFailure("truncated chunk")
            }
            output.writeBuffer(&chunk)
        }
    }

    static func percentEncoded(_ path: String) -> String {
        ClientRequest.percentEncodedPath(path)
    }
}
