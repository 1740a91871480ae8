import NIOHTTP1
import PosternCore
import PosternEngine

/// The CGI variables an HTTP request head itself determines (RFC 3875 §4.1): the request line,
/// the target split into PATH_INFO and QUERY_STRING, and every header as `HTTP_*`; then those
/// of the connection it came on (``variables(for:connection:)``). Pure functions; the first is
/// also driven by the HTTP fuzz target.
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

    /// The request's variables, as a front-end would set them (RFC 3875 §4.1): the head's, and
    /// the server's and the peer's addresses; behind `--https`, mod_ssl's (`HTTPS=on`, `SSL_*`).
    static func variables(for head: HTTPRequestHead, connection: ConnectionContext) throws(NormalizationError) -> EnvironBuilder.Result {
        let configuration = connection.configuration
        guard var builder = builder(for: head, maxBytes: configuration.limits.maxHeaderBytes) else {
            throw .invalid("request target")
        }
        builder.setComputed("SERVER_PROTOCOL", head.version == .http1_1 ? "HTTP/1.1" : EnvironValue("HTTP/\(head.version.major).\(head.version.minor)"))
        builder.setComputed("GATEWAY_INTERFACE", "CGI/1.1")
        builder.setComputed("SERVER_SOFTWARE", EnvironValue(configuration.serverSoftware))
        let hostHeader = head.headers.first(name: "host")
        builder.setComputed("SERVER_NAME", EnvironValue(hostHeader.map(hostWithoutPort) ?? connection.localIP ?? "localhost"))
        builder.setComputed("SERVER_PORT", EnvironValue(String(connection.localPort ?? 0)))
        if let ip = connection.remoteIP { builder.setComputed("REMOTE_ADDR", EnvironValue(ip)) }
        if let port = connection.remotePort { builder.setComputed("REMOTE_PORT", EnvironValue(String(port))) }
        if let ip = connection.localIP { builder.setComputed("SERVER_ADDR", EnvironValue(ip)) }
        if let security = connection.transportSecurity {
            // `--https`: the client is the TLS peer; mod_ssl's variables (HTTPS=on, SSL_*).
            builder.setComputed("REQUEST_SCHEME", "https")
            for variable in security.variables { builder.setComputed(variable.name, EnvironValue(variable.value)) }
        } else {
            builder.setComputed("REQUEST_SCHEME", "http")
        }
        return try (consume builder).finish()
    }

    /// `example.com:8080` → `example.com`; `[::1]:8080` → `::1`.
    static func hostWithoutPort(_ host: String) -> String {
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            return String(host[host.index(after: host.startIndex)..<close])
        }
        if let colon = host.lastIndex(of: ":") { return String(host[..<colon]) }
        return host
    }
}
