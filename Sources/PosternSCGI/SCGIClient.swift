import NIOCore
import NIOPosix
import PosternClient
import PosternCore

/// An SCGI client (`postern request scgi://…`, the tests): sends one request as a front-end would
/// and reads the CGI-style response until the server closes.
public enum SCGIClient {
    /// Sends `request` to the SCGI server at `address` (TCP or unix socket).
    public static func send(
        _ request: ClientRequest,
        to address: SocketAddress,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        setup: ClientChannelSetup? = nil
    ) async throws -> ClientResponse {
        let head = try SCGIRequestEncoder.encodeHead(variables: request.cgiVariables(), contentLength: request.body.readableBytes)
        return try await CloseDelimitedClientExchange.send(
            head: head, body: request.body, parser: CGIResponseHeadParser(mode: .cgi), to: address, group: group, setup: setup)
    }
}
