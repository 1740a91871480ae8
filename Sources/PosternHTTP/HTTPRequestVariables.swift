import NIOHTTP1
import PosternCore

/// The CGI variables an HTTP request head itself determines (RFC 3875 §4.1): the request line,
/// the target split into PATH_INFO and QUERY_STRING, and every header as `HTTP_*`. The
/// connection's own (server and remote addresses) are added by ``HTTPExchange``. A pure
/// function, also driven by the HTTP fuzz target.
public enum HTTPRequestVariables {
    /// A builder holding the head's variables; `nil` when the request target does not parse.
    public static func builder(for head: HTTPRequestHead, maxBytes: Int) -> EnvironBuilder? {
        guard let target = HTTPTarget(parsing: head.uri) else { return nil }
        var builder = EnvironBuilder(gatewayProtocol: .http, maxBytes: maxBytes)
        for (name, value) in head.headers {
            builder.addHeader(name: name, value: value)
        }
        builder.setComputed("REQUEST_METHOD", EnvironValue(head.method.rawValue))
        builder.setComputed("REQUEST_URI", EnvironValue(head.uri))
        builder.setComputed("SCRIPT_NAME", "")
        builder.setComputed("PATH_INFO", EnvironValue(bytes: target.decodedPath))
        builder.setComputed("QUERY_STRING", EnvironValue(target.query))
        return builder
    }
}
