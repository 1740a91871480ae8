import Logging
import NIOCore
import PosternCore
import PosternEngine

/// uwsgi server side (`--uwsgi ADDR`): the listener nginx `uwsgi_pass` and Apache
/// mod_proxy_uwsgi talk to.
///
/// Each connection carries one request: ``UWSGIRequestDecoder`` reads the packet header and vars
/// and frames the body, the vars go through the normalizer, the body streams into the
/// application, and the response goes back with an HTTP status line (`HTTP/1.1 200 OK`;
/// mod_proxy_uwsgi fails with 502 on a CGI-style block), then the connection closes.
public struct UWSGIProtocolServer: CloseDelimitedProtocolServer {
    public let configuration: GatewayConfiguration
    public var gatewayProtocol: GatewayProtocol { .uwsgi }

    public init(configuration: GatewayConfiguration) {
        self.configuration = configuration
    }

    public static let responseFraming = CloseDelimitedFraming(statusLine: true)

    public func makeDecoder() -> UWSGIRequestDecoder {
        UWSGIRequestDecoder(limits: configuration.limits)
    }

    /// The uwsgi vars through the normalizer.
    public static func variables(for head: UWSGIRequestHead, context: ConnectionContext) throws(NormalizationError) -> EnvironBuilder.Result {
        let limits = context.configuration.limits
        var builder = EnvironBuilder(gatewayProtocol: .uwsgi, maxBytes: max(limits.maxHeaderBytes, limits.maxUWSGIVarsBytes))
        head.forEachVariable { key, value in builder.addVariable(name: key, value: value) }
        for (name, reason) in builder.dropped {
            context.logger.debug("variable dropped", metadata: ["name": "\(name)", "reason": "\(reason)"])
        }
        return try (consume builder).finish()
    }
}
