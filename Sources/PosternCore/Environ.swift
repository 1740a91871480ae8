/// The request as every adapter hands it to an application: CGI meta-variables plus gateway entries.
///
/// This is Postern's `environ` (PEP 3333 §"environ Variables"): the RFC 3875 meta-variables, then
/// the gateway's own entries, the analogue of `wsgi.*`:
///
/// | PEP 3333            | Postern              |
/// |---------------------|----------------------|
/// | `wsgi.input`        | ``body``             |
/// | `wsgi.errors`       | ``errors``           |
/// | `wsgi.url_scheme`   | ``urlScheme``        |
/// | `wsgi.multithread`  | ``multithread``      |
/// | `wsgi.multiprocess` | ``multiprocess``     |
/// | `wsgi.run_once`     | ``runOnce``          |
///
/// Build one with ``EnvironBuilder`` (the one normalizer); adapters never fill it by hand.
public struct Environ: Sendable {
    /// The CGI meta-variables, normalized (see ``EnvironBuilder``): read and set them like a
    /// dictionary (``EnvironVariables``).
    public var variables: EnvironVariables
    /// The request body: a one-pass async byte stream with backpressure (`wsgi.input`).
    public var body: RequestBody
    /// FastCGI FILTER role only: the FCGI_DATA stream (the file to filter), beside ``body``.
    public var filterData: RequestBody?
    /// Where the application reports errors (`wsgi.errors`): FCGI_STDERR over FastCGI, the
    /// process's stderr in CGI mode, the log otherwise.
    public var errors: ErrorStream
    /// `http` or `https` (`wsgi.url_scheme`).
    public var urlScheme: String
    /// The protocol that carried the request.
    public var gatewayProtocol: GatewayProtocol
    /// Requests may run concurrently in this process (`wsgi.multithread`).
    public var multithread: Bool
    /// Other processes serve the same application (`wsgi.multiprocess`).
    public var multiprocess: Bool
    /// The process serves one request and exits: CGI mode (`wsgi.run_once`).
    public var runOnce: Bool
    /// What the gateway learnt of the connection that carried the request, under `gateway.*`
    /// names, for the application to read beside the variables: on a TLS listener, the
    /// handshake with its peer (`gateway.tls_protocol`, `gateway.tls_peer_verify`,
    /// `gateway.tls_peer_s_dn`, `gateway.tls_peer_i_dn`, `gateway.tls_peer_serial`). Behind
    /// `--suwsgi` and `--fastcgi-tls` that peer is the front-end, whose own `HTTPS` and `SSL_*`
    /// variables describe the user's connection and are left as sent; empty on plaintext.
    public var connectionEntries: [String: String] = [:]

    public init(
        variables: EnvironVariables,
        body: RequestBody = .empty,
        filterData: RequestBody? = nil,
        errors: ErrorStream = .discard,
        urlScheme: String = "http",
        gatewayProtocol: GatewayProtocol,
        multithread: Bool = true,
        multiprocess: Bool = false,
        runOnce: Bool = false
    ) {
        self.variables = variables
        self.body = body
        self.filterData = filterData
        self.errors = errors
        self.urlScheme = urlScheme
        self.gatewayProtocol = gatewayProtocol
        self.multithread = multithread
        self.multiprocess = multiprocess
        self.runOnce = runOnce
    }

    /// The UTF-8 view of a meta-variable (invalid sequences become U+FFFD), or `nil` if absent.
    public subscript(_ name: String) -> String? {
        variables[name]?.string
    }

    public var requestMethod: String { self["REQUEST_METHOD"] ?? "GET" }
    public var scriptName: String { self["SCRIPT_NAME"] ?? "" }
    public var pathInfo: String { self["PATH_INFO"] ?? "" }
    public var queryString: String { self["QUERY_STRING"] ?? "" }
    public var contentType: String? { self["CONTENT_TYPE"] }

    /// The declared body length, `nil` when the request has none (or it is framed by its end).
    public var contentLength: Int? { self["CONTENT_LENGTH"].flatMap { Int($0) } }

    /// The gateway entries under their `gateway.*` names, as the `environ` demo prints them.
    public var gatewayEntries: [String: String] {
        [
            "gateway.url_scheme": urlScheme,
            "gateway.multithread": String(multithread),
            "gateway.multiprocess": String(multiprocess),
            "gateway.run_once": String(runOnce),
            "gateway.protocol": gatewayProtocol.rawValue,
        ].merging(connectionEntries) { fixed, _ in fixed }
    }
}

extension Environ {
    /// An environ from the normalizer's result: the only way adapters make one.
    public init(
        _ normalized: EnvironBuilder.Result,
        gatewayProtocol: GatewayProtocol,
        body: RequestBody,
        errors: ErrorStream,
        flags: GatewayFlags,
        filterData: RequestBody? = nil,
        connectionEntries: [String: String] = [:]
    ) {
        self.init(
            variables: normalized.variables,
            body: body,
            filterData: filterData,
            errors: errors,
            urlScheme: normalized.urlScheme,
            gatewayProtocol: gatewayProtocol,
            multithread: flags.multithread,
            multiprocess: flags.multiprocess,
            runOnce: flags.runOnce
        )
        self.connectionEntries = connectionEntries
    }
}

/// How this process serves: the `multithread`/`multiprocess`/`runOnce` entries of every environ.
public struct GatewayFlags: Sendable, Hashable {
    public var multithread: Bool
    public var multiprocess: Bool
    public var runOnce: Bool

    public init(multithread: Bool = true, multiprocess: Bool = false, runOnce: Bool = false) {
        self.multithread = multithread
        self.multiprocess = multiprocess
        self.runOnce = runOnce
    }

    /// A CGI program: one request, one process.
    public static let cgi = GatewayFlags(multithread: false, multiprocess: true, runOnce: true)
}
