import NIOCore
import NIOPosix
import PosternClient
import PosternCore

/// A uwsgi client (`postern request uwsgi://…`, the tests): sends one modifier1 0 request as
/// nginx `uwsgi_pass` does and reads the HTTP-status-line response until the server closes.
public enum UWSGIClient {
    /// Sends `request` to the uwsgi server at `address` (TCP or unix socket).
    public static func send(
        _ request: ClientRequest,
        to address: SocketAddress,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        setup: ClientChannelSetup? = nil
    ) async throws -> ClientResponse {
        let head = try UWSGIRequestEncoder.encodeHead(variables: request.cgiVariables(), contentLength: request.body.readableBytes)
        return try await CloseDelimitedClientExchange.send(
            head: head, body: request.body, parser: CGIResponseHeadParser(mode: .httpStatusLine), to: address, group: group, setup: setup)
    }
}
