import PosternCore
import Testing

@Suite("Mount prefix")
struct MountPrefixTests {
    func seen(script: EnvironValue, path: EnvironValue, prefix: String = "/app") async throws -> (String, String) {
        let app = try MountPrefix(
            prefix,
            wrapping: ApplicationFunction { environ in
                .text((environ.variables["SCRIPT_NAME"]?.string ?? "nil") + "|" + (environ.variables["PATH_INFO"]?.string ?? "nil"))
            })
        let response = try await app.respond(to: Environ(variables: ["SCRIPT_NAME": script, "PATH_INFO": path], gatewayProtocol: .scgi))
        guard case .bytes(let buffer) = response.body.storage else {
            Issue.record("not a byte body")
            return ("", "")
        }
        let parts = String(buffer: buffer).split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        return (parts[0], parts[1])
    }

    @Test(
        "every front-end's split becomes SCRIPT_NAME=prefix, PATH_INFO=rest",
        arguments: [
            ("/app/a/b", "", "/app", "/a/b"),  // mod_proxy_fcgi, mod_proxy_scgi
            ("", "/app/a/b", "/app", "/a/b"),  // mod_proxy_uwsgi
            ("/app", "/a/b", "/app", "/a/b"),  // lighttpd, nginx with split_path_info
            ("/app", "", "/app", ""),
            ("/application/x", "", "/application/x", ""),  // not under /app: a prefix ends at a segment
            ("/other", "/x", "/other", "/x"),
        ] as [(EnvironValue, EnvironValue, String, String)])
    func split(script: EnvironValue, path: EnvironValue, expectedScript: String, expectedPath: String) async throws {
        let (seenScript, seenPath) = try await seen(script: script, path: path)
        #expect(seenScript == expectedScript)
        #expect(seenPath == expectedPath)
    }

    @Test("bytes that are not UTF-8 survive the split")
    func lossless() async throws {
        let environ = Environ(variables: ["SCRIPT_NAME": "", "PATH_INFO": EnvironValue(bytes: Array("/app/".utf8) + [0xFF])], gatewayProtocol: .uwsgi)
        let app = try MountPrefix(
            "/app/",
            wrapping: ApplicationFunction { environ in
                #expect(environ.variables["PATH_INFO"]?.bytes == [UInt8(ascii: "/"), 0xFF])
                #expect(environ.variables["SCRIPT_NAME"]?.string == "/app")
                return .text("ok")
            })
        _ = try await app.respond(to: environ)
    }

    @Test("a prefix must be an absolute path below /", arguments: ["", "/", "app", "//"])
    func invalid(prefix: String) {
        #expect(throws: MountPrefixError.self) { _ = try MountPrefix(prefix, wrapping: ApplicationFunction { _ in .text("") }) }
    }
}
