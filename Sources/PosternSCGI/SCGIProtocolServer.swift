import Logging
import NIOCore
import PosternCore
import PosternEngine

/// SCGI server side (`--scgi ADDR`): the listener nginx `scgi_pass`, Apache mod_proxy_scgi and
/// lighttpd mod_scgi talk to.
///
/// Each connection carries one request: ``SCGIRequestDecoder`` splits the netstring and frames
/// the body, the headers go through the normalizer, the body streams into the application, and
/// the response goes back CGI-style (`Status: 200 OK`, fields, blank line, body; mod_proxy_scgi
/// fails on an HTTP status line), then the connection closes.
public struct SCGIProtocolServer: CloseDelimitedProtocolServer {
    public let configuration: GatewayConfiguration
    public var gatewayProtocol: GatewayProtocol { .scgi }

    public init(configuration: GatewayConfiguration) {
        self.configuration = configuration
    }

    public static let responseFraming = CloseDelimitedFraming(statusLine: false)

    public func makeDecoder() -> SCGIRequestDecoder {
        SCGIRequestDecoder(limits: configuration.limits)
    }

    /// The SCGI headers through the normalizer. `SCGI` itself is protocol framing, not a CGI
    /// variable; what the front-end sent is otherwise kept as sent.
    public static func variables(for head: SCGIRequestHead, context: ConnectionContext) throws(NormalizationError) -> EnvironBuilder.Result {
        var builder = EnvironBuilder(gatewayProtocol: .scgi, maxBytes: context.configuration.limits.maxHeaderBytes)
        head.forEachHeader { name, value in
            if !name.elementsEqual(SCGIRequestHead.scgiName) { builder.addVariable(name: name, value: value) }
        }
        for (name, reason) in builder.dropped {
            context.logger.debug("variable dropped", metadata: ["name": "\(name)", "reason": "\(reason)"])
        }
        return try (consume builder).finish()
    }
}
