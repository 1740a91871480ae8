/// The front-end configuration that routes each mode's path to its backend (nginx, lighttpd, Apache).
import Foundation
import PosternFrontEnds

/// Generates one configuration snippet per front-end for the started backends.
public enum BenchFrontEndConfig {
    /// The modes a front-end can route, and why not otherwise.
    public static func unsupported(_ mode: BenchMode, on kind: FrontEnd.Kind) -> String? {
        switch (kind, mode) {
        case (.nginx, _): nil
        case (_, .fcgiwrap): "fcgiwrap is measured through nginx only (\(kind) runs CGI itself)"
        case (_, .fastcgiClose): "\(kind) always uses one FastCGI connection per request: see fastcgi"
        case (_, .suwsgi), (_, .uwsgiPythonSSL): "\(kind) has no TLS to uwsgi backends (nginx's uwsgi_pass suwsgi:// has)"
        default: nil
        }
    }

    public static func snippet(for kind: FrontEnd.Kind, endpoints: [BenchMode: BenchEndpoint], directory: String) -> String {
        switch kind {
        case .nginx: nginx(endpoints, directory)
        case .lighttpd: lighttpd(endpoints, directory)
        case .apache: apache(endpoints, directory)
        case .haproxy: preconditionFailure("the bench runs through nginx, lighttpd or apache (BenchCommand refuses haproxy)")
        }
    }

    /// A full server block (the launcher rewrites `listen`); FastCGI with kept connections where asked.
    static func nginx(_ endpoints: [BenchMode: BenchEndpoint], _ dir: String) -> String {
        var upstreams = ""
        var locations = ""
        for (mode, endpoint) in endpoints.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let prefix = "/\(mode.rawValue)/"
            switch mode {
            case .static, .http, .hummingbird, .https, .hummingbirdTLS:
                continue
            case .fastcgi, .fastcgiUnix:
                upstreams += "upstream bench_\(mode.rawValue.replacingDashes) {\n    server \(endpoint.hostPort);\n    keepalive 16;\n}\n"
                locations += """
                        location \(prefix) {
                            include fastcgi_params;
                            fastcgi_keep_conn on;
                            fastcgi_pass bench_\(mode.rawValue.replacingDashes);
                        }

                    """
            case .fastcgiClose, .libfcgi, .uwsgiPythonFastCGI, .cgiHost, .floorFastCGI:
                locations += "        location \(prefix) {\n            include fastcgi_params;\n            fastcgi_pass \(endpoint.hostPort);\n        }\n"
            case .scgi, .scgiWorkers, .uwsgiPythonSCGI, .floorSCGI:
                locations += "        location \(prefix) {\n            include scgi_params;\n            scgi_pass \(endpoint.hostPort);\n        }\n"
            case .uwsgi, .uwsgiPythonUWSGI, .floorUWSGI:
                locations += "        location \(prefix) {\n            include uwsgi_params;\n            uwsgi_pass \(endpoint.hostPort);\n        }\n"
            case .suwsgi, .uwsgiPythonSSL:
                // The server's certificate checked against the bench's CA; the last session
                // reused (nginx's default), as a deployment over TLS does.
                locations += """
                        location \(prefix) {
                            include uwsgi_params;
                            uwsgi_pass suwsgi://\(endpoint.hostPort);
                            uwsgi_ssl_trusted_certificate \(BenchWorkspace.TLSFiles(directory: dir).authority);
                            uwsgi_ssl_verify on;
                            uwsgi_ssl_name localhost;
                            uwsgi_ssl_session_reuse on;
                        }

                    """
            case .cgi, .cgiApp, .cgiC, .fcgiwrap:
                continue
            }
        }
        if let cgi = [BenchMode.cgi, .cgiApp, .cgiC, .fcgiwrap].compactMap({ endpoints[$0] }).first {
            locations += """
                    location /cgi-bin/ {
                        include fastcgi_params;
                        fastcgi_param SCRIPT_FILENAME \(dir)$fastcgi_script_name;
                        fastcgi_pass \(cgi.hostPort);
                    }

                """
        }
        return """
            \(upstreams)server {
                listen 127.0.0.1:0;
                root \(dir)/htdocs;
                default_type text/plain;
            \(locations)}

            """
    }

    static func lighttpd(_ endpoints: [BenchMode: BenchEndpoint], _ dir: String) -> String {
        var fastcgi: [String] = []
        var scgi: [String] = []
        func server(_ endpoint: BenchEndpoint, _ extra: String = "") -> String {
            switch endpoint.address {
            case .tcp(let port): "(( \"host\" => \"127.0.0.1\", \"port\" => \(port), \"check-local\" => \"disable\"\(extra) ))"
            case .unix(let path): "(( \"socket\" => \"\(path)\", \"check-local\" => \"disable\"\(extra) ))"
            }
        }
        for (mode, endpoint) in endpoints.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let prefix = "\"/\(mode.rawValue)/\""
            switch mode {
            case .fastcgi, .fastcgiUnix, .libfcgi, .uwsgiPythonFastCGI, .cgiHost, .floorFastCGI:
                fastcgi.append("\(prefix) => \(server(endpoint))")
            case .scgi, .scgiWorkers, .uwsgiPythonSCGI, .floorSCGI:
                scgi.append("\(prefix) => \(server(endpoint))")
            case .uwsgi, .uwsgiPythonUWSGI, .floorUWSGI:
                scgi.append("\(prefix) => \(server(endpoint, ", \"scgi-protocol\" => \"uwsgi\""))")
            default:
                continue
            }
        }
        return """
            server.modules += ( "mod_alias", "mod_cgi", "mod_fastcgi", "mod_scgi" )
            server.max-connections = 1024
            mimetype.assign += ( "" => "text/plain" )
            alias.url = ( "/cgi-bin/" => "\(dir)/cgi-bin/" )
            $HTTP["url"] =~ "^/cgi-bin/" { cgi.assign = ( "" => "" ) }
            fastcgi.server = ( \(fastcgi.joined(separator: ",\n    ")) )
            scgi.server = ( \(scgi.joined(separator: ",\n    ")) )

            """
    }

    static func apache(_ endpoints: [BenchMode: BenchEndpoint], _ dir: String) -> String {
        var lines = [
            "ScriptAlias /cgi-bin/ \(dir)/cgi-bin/",
            "<Directory \(dir)/cgi-bin>\n    Options +ExecCGI\n    Require all granted\n</Directory>",
            "<Location /static/>\n    ForceType text/plain\n</Location>",
            "KeepAlive On\nMaxKeepAliveRequests 0",
        ]
        for (mode, endpoint) in endpoints.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let prefix = "/\(mode.rawValue)/"
            let url: String
            switch (mode, endpoint.address) {
            case (.fastcgi, .tcp(let port)), (.libfcgi, .tcp(let port)), (.uwsgiPythonFastCGI, .tcp(let port)), (.cgiHost, .tcp(let port)),
                (.floorFastCGI, .tcp(let port)):
                url = "fcgi://127.0.0.1:\(port)/"
            case (.fastcgiUnix, .unix(let path)):
                url = "unix:\(path)|fcgi://localhost/"
            case (.scgi, .tcp(let port)), (.scgiWorkers, .tcp(let port)), (.uwsgiPythonSCGI, .tcp(let port)), (.floorSCGI, .tcp(let port)):
                url = "scgi://127.0.0.1:\(port)/"
            case (.uwsgi, .tcp(let port)), (.uwsgiPythonUWSGI, .tcp(let port)), (.floorUWSGI, .tcp(let port)):
                url = "uwsgi://127.0.0.1:\(port)/"
            default:
                continue
            }
            lines.append("ProxyPass \(prefix) \(url)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension String {
    fileprivate var replacingDashes: String { replacingOccurrences(of: "-", with: "_") }
}
