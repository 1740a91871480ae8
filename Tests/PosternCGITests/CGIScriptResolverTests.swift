// The script resolver and the clean environment, without a server.
import Foundation
import PosternCGI
import PosternCore
import Testing

@testable import PosternCGIHost

@Suite("CGI script resolution and environment")
struct CGIScriptResolverTests {
    @Test("under a --mount prefix the script is found by PATH_INFO and keeps the prefix; elsewhere the whole path")
    func mountedPath() {
        #expect(CGIScriptHost.scriptPath(scriptName: "/legacy", pathInfo: "/form.py/x", mount: "/legacy") == ("/legacy", "/form.py/x"))
        #expect(CGIScriptHost.scriptPath(scriptName: "/legacy", pathInfo: "/form.py", mount: nil) == ("", "/legacy/form.py"))
        #expect(CGIScriptHost.scriptPath(scriptName: "/form.py", pathInfo: "/x", mount: "/legacy") == ("", "/form.py/x"))
        #expect(CGIScriptHost.scriptPath(scriptName: "", pathInfo: "/env.sh", mount: "") == ("", "/env.sh"))
    }

    @Test("the first executable file ends SCRIPT_NAME; the rest is PATH_INFO")
    func splitsPath() throws {
        let resolver = try CGIScriptResolver(root: TestPaths.scriptsDirectory)
        let location = try resolver.resolve(path: "/sub/inner.sh/a/b/")
        #expect(location.scriptName == "/sub/inner.sh")
        #expect(location.pathInfo == "/a/b/")
        #expect(location.filename == resolver.root + "/sub/inner.sh")
        #expect(try resolver.resolve(path: "/nph-hello.sh").isNPH)
        #expect(throws: CGIScriptResolutionError.unsafePath("/sub/../env.sh")) { try resolver.resolve(path: "/sub/../env.sh") }
        #expect(throws: CGIScriptResolutionError.unsafePath("relative")) { try resolver.resolve(path: "relative") }
        #expect(throws: CGIScriptResolutionError.notFound("/nope")) { try resolver.resolve(path: "/nope/x") }
        #expect(throws: CGIScriptResolutionError.notExecutable("/README.md")) { try resolver.resolve(path: "/README.md") }
        #expect(throws: CGIScriptResolutionError.directory("/sub")) { try resolver.resolve(path: "/sub/") }
    }

    @Test("the script environment: meta-variables and allow-list only, resolver's paths win, no HTTP_PROXY")
    func environment() throws {
        let location = CGIScriptLocation(scriptName: "/s.sh", pathInfo: "/p", filename: "/srv/cgi/s.sh")
        let request: EnvironVariables = [
            "REQUEST_METHOD": "GET", "HTTP_HOST": "x", "HTTP_PROXY": "evil", "LD_PRELOAD": "/tmp/evil.so",
            "SCRIPT_FILENAME": "/etc/passwd", "DOCUMENT_ROOT": "/", "FCGI_ROLE": "RESPONDER",
        ]
        let environment = CGIScriptEnvironment(
            request: request, location: location, root: "/srv/cgi",
            gatewayEnvironment: ["HOME": "/root", "LANG": "C.UTF-8", "HTTP_PROXY": "gw"], passNames: ["LANG", "HTTP_PROXY"],
            defaultPath: "/usr/bin:/bin"
        )
        let variables = environment.variables.mapValues { String(decoding: $0, as: UTF8.self) }
        #expect(
            variables == [
                "REQUEST_METHOD": "GET", "HTTP_HOST": "x", "LANG": "C.UTF-8", "PATH": "/usr/bin:/bin",
                "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_SOFTWARE": "Postern/\(PosternVersion.current)",
                "SCRIPT_NAME": "/s.sh", "PATH_INFO": "/p", "SCRIPT_FILENAME": "/srv/cgi/s.sh",
                "DOCUMENT_ROOT": "/srv/cgi", "PATH_TRANSLATED": "/srv/cgi/p",
            ])
        #expect(environment.entries.first == Array("DOCUMENT_ROOT=/srv/cgi".utf8))
    }
}
