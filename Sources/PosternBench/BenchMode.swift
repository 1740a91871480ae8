/// The things `postern bench` can measure: Postern's protocols, CGI, and the references.
import Foundation

/// One way of serving the 14-byte hello; each is one column of the results.
public enum BenchMode: String, CaseIterable, Sendable, Codable {
    /// The front-end serving a 14-byte file itself: the ceiling.
    case `static`
    /// Postern's own HTTP/1.1 listener, wrk straight at it (no front-end).
    case http
    /// Hummingbird 2's hello (Benchmarks/reference/hummingbird-hello), the HTTP listener's reference.
    case hummingbird
    /// Postern's `--https` listener (TLS, an ECDSA P-256 certificate), wrk straight at it,
    /// connections kept.
    case https
    /// The same Hummingbird hello over HummingbirdTLS (swift-nio-ssl as Postern's), same
    /// certificate: the HTTPS listener's reference.
    case hummingbirdTLS = "hummingbird-tls"
    /// Postern FastCGI over TCP (nginx: `fastcgi_keep_conn on` + upstream keepalive).
    case fastcgi
    /// Postern FastCGI over TCP, one connection per request (nginx without keep_conn; as the references).
    case fastcgiClose = "fastcgi-close"
    /// Postern FastCGI over a unix socket.
    case fastcgiUnix = "fastcgi-unix"
    case scgi
    /// Postern SCGI with `--workers 2`: a master and two worker processes sharing the socket.
    case scgiWorkers = "scgi-workers"
    case uwsgi
    /// Postern uwsgi inside TLS (`--suwsgi`, an ECDSA P-256 certificate), nginx's
    /// `uwsgi_pass suwsgi://` reusing sessions (nginx only: the one front-end with TLS to uwsgi).
    case suwsgi
    /// The `hello` binary as a CGI program, one process per request (nginx: through fcgiwrap).
    case cgi
    /// The `hello` example, built on `Gateway.main` as users build their own app binaries, run
    /// as a CGI program (nginx: through fcgiwrap).
    case cgiApp = "cgi-app"
    /// A shell CGI script hosted by `postern serve --cgi-root` over FastCGI.
    case cgiHost = "cgi-host"
    /// libfcgi's C responder (Benchmarks/reference/hello-fcgi.c), one process per core.
    case libfcgi
    /// The C CGI program (Benchmarks/reference/hello-cgi.c).
    case cgiC = "cgi-c"
    /// The shell CGI script through fcgiwrap (nginx only).
    case fcgiwrap
    /// uWSGI with a Python hello, one process per core, on each protocol.
    case uwsgiPythonFastCGI = "uwsgi-python-fastcgi"
    case uwsgiPythonSCGI = "uwsgi-python-scgi"
    case uwsgiPythonUWSGI = "uwsgi-python-uwsgi"
    /// uWSGI with a Python hello on its TLS socket (`--ssl-socket`, the same certificate), the
    /// reference for `suwsgi`.
    case uwsgiPythonSSL = "uwsgi-python-ssl"
    /// The C floor (Benchmarks/reference/floor.c): threads that accept, read once, send a canned
    /// response in the protocol's framing and close; no parsing, no application.
    case floorSCGI = "floor-scgi"
    case floorUWSGI = "floor-uwsgi"
    case floorFastCGI = "floor-fastcgi"

    /// The default order: references interleaved with what they are compared to.
    public static let defaultModes: [BenchMode] = allCases

    /// What the mode is, for the table.
    public var summary: String {
        switch self {
        case .static: "front-end serves the file itself (ceiling)"
        case .http: "Postern HTTP/1.1, no front-end"
        case .hummingbird: "Hummingbird 2 hello, HTTP/1.1, no front-end (reference)"
        case .https: "Postern HTTPS (TLS, P-256), keep-alive, no front-end"
        case .hummingbirdTLS: "Hummingbird 2 hello over HummingbirdTLS, keep-alive, no front-end (reference)"
        case .fastcgi: "Postern FastCGI, TCP, kept connections"
        case .fastcgiClose: "Postern FastCGI, TCP, connection per request"
        case .fastcgiUnix: "Postern FastCGI, unix socket"
        case .scgi: "Postern SCGI"
        case .scgiWorkers: "Postern SCGI, --workers 2"
        case .uwsgi: "Postern uwsgi"
        case .suwsgi: "Postern uwsgi inside TLS (suwsgi), sessions reused"
        case .floorSCGI: "C floor, SCGI: accept, read, send, close (reference)"
        case .floorUWSGI: "C floor, uwsgi (reference)"
        case .floorFastCGI: "C floor, FastCGI (reference)"
        case .cgi: "Postern hello as a CGI program"
        case .cgiApp: "Postern hello built on Gateway.main, as a CGI program"
        case .cgiHost: "shell CGI script via postern --cgi-root"
        case .libfcgi: "libfcgi C responder (reference)"
        case .cgiC: "C CGI program (reference)"
        case .fcgiwrap: "shell CGI script via fcgiwrap (reference)"
        case .uwsgiPythonFastCGI: "uWSGI + Python, FastCGI (reference)"
        case .uwsgiPythonSCGI: "uWSGI + Python, SCGI (reference)"
        case .uwsgiPythonUWSGI: "uWSGI + Python, uwsgi (reference)"
        case .uwsgiPythonSSL: "uWSGI + Python, uwsgi inside TLS, --ssl-socket (reference)"
        }
    }

    /// Parses a comma-separated list; `uwsgi-python` and `floor` stand for their three protocols,
    /// `all` for every mode.
    public static func parseList(_ text: String) throws -> [BenchMode] {
        var modes: [BenchMode] = []
        for word in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !word.isEmpty {
            if word == "all" {
                modes += allCases
            } else if word == "uwsgi-python" {
                modes += [.uwsgiPythonFastCGI, .uwsgiPythonSCGI, .uwsgiPythonUWSGI]
            } else if word == "floor" {
                modes += [.floorFastCGI, .floorSCGI, .floorUWSGI]
            } else if let mode = BenchMode(rawValue: word) {
                modes.append(mode)
            } else {
                throw BenchError("unknown mode \(word); choose from \(allCases.map(\.rawValue).joined(separator: ", ")), uwsgi-python, floor, all")
            }
        }
        var seen = Set<BenchMode>()
        return modes.filter { seen.insert($0).inserted }
    }

    /// Measured without a front-end: wrk talks to the HTTP server itself.
    public var isDirect: Bool { [.http, .hummingbird, .https, .hummingbirdTLS].contains(self) }

    /// The scheme wrk speaks to the mode: `https` to the direct TLS listeners, else `http`.
    public var scheme: String { self == .https || self == .hummingbirdTLS ? "https" : "http" }

    /// Whether one process serves every request (its peak RSS is the backend's), or one is spawned per request.
    public var isPersistent: Bool {
        switch self {
        case .cgi, .cgiApp, .cgiC, .fcgiwrap, .static: false
        default: true
        }
    }

    /// The URL path the front-end routes to this mode.
    public var path: String {
        switch self {
        case .static: "/static/hello.txt"
        case .http, .hummingbird, .https, .hummingbirdTLS: "/hello"
        case .cgi: "/cgi-bin/hello"
        case .cgiApp: "/cgi-bin/hello-app"
        case .cgiC: "/cgi-bin/hello-c"
        case .fcgiwrap: "/cgi-bin/hello.sh"
        case .cgiHost: "/cgi-host/hello.sh"
        default: "/\(rawValue)/hello"
        }
    }
}
