import PosternCore

/// `--ping-path PATH` (php-fpm's `ping.path`): the gateway answers `GET` and `HEAD` of PATH
/// itself, in every protocol, without calling the application: `200 pong`, or `503 draining`
/// while ``DrainState`` says the member is leaving its balancer. HAProxy's `option httpchk`
/// (sent as a FastCGI request by an `fcgi-app` backend), Apache's `mod_proxy_hcheck` and a
/// cloud load balancer's HTTP check get a target that says whether this process serves, not
/// whether the application's own pages do.
///
/// The path is the request's whole path, SCRIPT_NAME + PATH_INFO (PEP 3333), matched before
/// `--mount` re-splits it; the query string is ignored. Other methods reach the application.
package struct PingResponder: Middleware {
    package let next: any Application
    private let path: String
    private let draining: DrainState

    package init(path: String, draining: DrainState, wrapping next: any Application) {
        self.path = path
        self.draining = draining
        self.next = next
    }

    package func respond(to environ: Environ) async throws -> Response {
        guard environ.scriptName + environ.pathInfo == path, environ.requestMethod == "GET" || environ.requestMethod == "HEAD" else {
            return try await next.respond(to: environ)
        }
        let headers: ResponseHeaders = ["Content-Type": "text/plain", "Cache-Control": "no-store"]
        if draining.isDraining {
            return Response(status: .serviceUnavailable, headers: headers, body: ResponseBody(string: "draining\n"))
        }
        return Response(status: .ok, headers: headers, body: ResponseBody(string: "pong\n"))
    }

    /// Why `path` cannot be a ping path, or `nil`: it must be absolute, without a query.
    package static func problem(with path: String) -> String? {
        guard path.hasPrefix("/"), !path.contains("?"), !path.contains("#") else {
            return "--ping-path \(String(reflecting: path)) must be an absolute path without a query (such as /ping)"
        }
        return nil
    }
}
