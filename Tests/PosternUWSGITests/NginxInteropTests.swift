import NIOCore
import Postern
import PosternApps
import PosternClient
import PosternCore
import PosternTestSupport
import Testing

/// A smoke check against a real front-end: nginx `scgi_pass` and `uwsgi_pass` to Postern's
/// listeners, with the stock `scgi_params` / `uwsgi_params` of the Debian package.
@Suite struct NginxInteropTests {
    /// `/…/echo` echoes the body; anything else dumps the environ.
    struct Router: Application {
        func respond(to environ: Environ) async throws -> Response {
            if environ["REQUEST_URI"]?.contains("/echo") == true { return try await Echo().respond(to: environ) }
            return try await EnvironDump().respond(to: environ)
        }
    }

    @Test func nginxScgiPassAndUwsgiPass() async throws {
        try #require(NginxProcess.isInstalled, "nginx is not installed at \(NginxProcess.binary)")
        try await withLiveGateway([loopback(.scgi), loopback(.uwsgi)], application: Router()) { addresses in
            let server = """
                location /scgi/ { include /etc/nginx/scgi_params; scgi_pass 127.0.0.1:\(addresses[0].port!); }
                    location /uwsgi/ { include /etc/nginx/uwsgi_params; uwsgi_pass 127.0.0.1:\(addresses[1].port!); }
                """
            try await NginxProcess.withNginx(server: server) { nginx in
                for (prefix, name) in [("/scgi", "scgi"), ("/uwsgi", "uwsgi")] {
                    let get = try await TestHTTPClient.send(
                        ClientRequest(method: "GET", target: "\(prefix)/env?x=1&y=2", headers: [("X-Trace", "n1"), ("Proxy", "http://evil")]),
                        to: nginx)
                    #expect(get.status.code == 200, "\(name): \(get.body.text)")
                    let environ = try CrossProtocolEnviron.parseEnvironDump(get.body)
                    #expect(environ["gateway.protocol"] == name)
                    #expect(environ["REQUEST_METHOD"] == "GET")
                    #expect(environ["QUERY_STRING"] == "x=1&y=2")
                    #expect(environ["REQUEST_URI"] == "\(prefix)/env?x=1&y=2")
                    #expect(environ["HTTP_X_TRACE"] == "n1")
                    #expect(environ["HTTP_PROXY"] == nil, "\(name): httpoxy header reached the app")
                    #expect(environ["CONTENT_LENGTH"] == "0", "\(name): the test client sends Content-Length: 0")
                    #expect(environ["SCGI"] == nil)

                    // As curl sends a GET: no Content-Length. nginx then sends CONTENT_LENGTH "0"
                    // over SCGI and an empty one over uwsgi (uwsgi_params), which the normalizer drops.
                    let bare = try await TestHTTPClient.send(ClientRequest(method: "GET", target: "\(prefix)/env"), to: nginx, lengthOnEmptyBody: false)
                    let bareEnviron = try CrossProtocolEnviron.parseEnvironDump(bare.body)
                    #expect(bareEnviron["CONTENT_LENGTH"] == (name == "scgi" ? "0" : nil), "\(name)")
                    #expect(bareEnviron["PATH_INFO"] == (name == "scgi" ? "" : "\(prefix)/env"), "\(name): nginx sends PATH_INFO only in uwsgi_params")

                    let payload = EchoPayload.make(bytes: 1 << 20)
                    let post = try await TestHTTPClient.send(
                        ClientRequest(method: "POST", target: "\(prefix)/echo", headers: [("Content-Type", "application/x-test")], body: payload),
                        to: nginx)
                    #expect(post.status.code == 200, "\(name)")
                    #expect(post.headers["Content-Type"] == "application/x-test")
                    let identical = post.body == payload  // compared outside #expect: a failure must not print megabytes
                    #expect(identical, "\(name): 1 MiB echo through nginx differs")
                }
            }
        }
    }
}
