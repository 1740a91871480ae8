import PosternCore
import Testing

@Suite("The normalizer")
struct EnvironBuilderTests {
    func finished(_ build: (inout EnvironBuilder) -> Void) throws -> EnvironBuilder.Result {
        var builder = EnvironBuilder(gatewayProtocol: .fastcgi)
        builder.addVariable(name: "REQUEST_METHOD", value: "GET")
        build(&builder)
        return try builder.finish()
    }

    @Test("HTTP_PROXY never reaches the app, from params or from a Proxy header (httpoxy)")
    func httpoxy() throws {
        let fromParams = try finished { $0.addVariable(name: "HTTP_PROXY", value: "http://evil:3128") }
        #expect(fromParams.variables["HTTP_PROXY"] == nil)
        let fromHeader = try finished { $0.addHeader(name: "Proxy", value: "http://evil:3128") }
        #expect(fromHeader.variables["HTTP_PROXY"] == nil)
        let lower = try finished { $0.addHeader(name: "proxy", value: "x") }
        #expect(lower.variables.keys.allSatisfy { !$0.contains("PROXY") })
    }

    @Test("header names outside [A-Za-z0-9-] are dropped, so X_Foo cannot pose as X-Foo")
    func headerNames() throws {
        let result = try finished {
            $0.addHeader(name: "X_Foo", value: "smuggled")
            $0.addHeader(name: "X-Foo", value: "real")
            $0.addHeader(name: "Bad Name", value: "x")
            $0.addHeader(name: "X.Dot", value: "x")
        }
        #expect(result.variables["HTTP_X_FOO"]?.string == "real")
        #expect(result.variables.count == 6)  // REQUEST_METHOD, HTTP_X_FOO + the four defaults
    }

    @Test("Content-Type and Content-Length are CONTENT_*, never HTTP_CONTENT_*")
    func contentHeaders() throws {
        let result = try finished {
            $0.addHeader(name: "Content-Type", value: "text/plain")
            $0.addHeader(name: "content-length", value: "5")
            $0.addVariable(name: "HTTP_CONTENT_TYPE", value: "x/y")
            $0.addVariable(name: "HTTP_CONTENT_LENGTH", value: "99")
        }
        #expect(result.variables["CONTENT_TYPE"]?.string == "text/plain")
        #expect(result.variables["CONTENT_LENGTH"]?.string == "5")
        #expect(result.contentLength == 5)
        #expect(result.variables["HTTP_CONTENT_TYPE"] == nil)
        #expect(result.variables["HTTP_CONTENT_LENGTH"] == nil)
    }

    @Test(
        "SCRIPT_NAME is never /: the slash moves to PATH_INFO",
        arguments: [
            ("/", "", "", "/"),
            ("/", "/x", "", "/x"),
            ("/app/", "x", "/app", "/x"),
            ("/app", "/x", "/app", "/x"),
            ("", "/", "", "/"),
        ])
    func scriptName(script: String, path: String, expectedScript: String, expectedPath: String) throws {
        let result = try finished {
            $0.addVariable(name: "SCRIPT_NAME", value: script)
            $0.addVariable(name: "PATH_INFO", value: path)
        }
        #expect(result.variables["SCRIPT_NAME"]?.string == expectedScript)
        #expect(result.variables["PATH_INFO"]?.string == expectedPath)
    }

    @Test("missing SCRIPT_NAME, PATH_INFO and QUERY_STRING become empty; GATEWAY_INTERFACE defaults")
    func defaults() throws {
        let result = try finished { _ in }
        #expect(result.variables["SCRIPT_NAME"]?.string == "")
        #expect(result.variables["PATH_INFO"]?.string == "")
        #expect(result.variables["QUERY_STRING"]?.string == "")
        #expect(result.variables["GATEWAY_INTERFACE"]?.string == "CGI/1.1")
        #expect(result.contentLength == nil)
        #expect(result.urlScheme == "http")
    }

    @Test("nginx's empty CONTENT_LENGTH and CONTENT_TYPE on a GET are removed")
    func emptyContentVariables() throws {
        let result = try finished {
            $0.addVariable(name: "CONTENT_LENGTH", value: "")
            $0.addVariable(name: "CONTENT_TYPE", value: "")
        }
        #expect(result.variables["CONTENT_LENGTH"] == nil)
        #expect(result.variables["CONTENT_TYPE"] == nil)
        #expect(result.contentLength == nil)
    }

    @Test("a malformed CONTENT_LENGTH is an error", arguments: ["-1", "1e3", " 5", "0x10", "99999999999999999999", "5 "])
    func badContentLength(value: String) {
        #expect(throws: NormalizationError.invalid("CONTENT_LENGTH")) {
            _ = try finished { $0.addVariable(name: "CONTENT_LENGTH", value: value) }
        }
    }

    @Test("two different Content-Length headers are a conflict, not a guess")
    func conflictingLength() {
        var builder = EnvironBuilder(gatewayProtocol: .http)
        builder.setComputed("REQUEST_METHOD", "POST")
        builder.addHeader(name: "Content-Length", value: "5")
        builder.addHeader(name: "Content-Length", value: "6")
        #expect(throws: NormalizationError.conflicting("CONTENT_LENGTH")) { try builder.finish() }
    }

    @Test("a request without REQUEST_METHOD is refused")
    func missingMethod() {
        let builder = EnvironBuilder(gatewayProtocol: .scgi)
        #expect(throws: NormalizationError.missing("REQUEST_METHOD")) { try builder.finish() }
    }

    @Test("values that are not UTF-8 are kept byte for byte, with a repaired UTF-8 view")
    func lossless() throws {
        let raw: [UInt8] = [0x2F, 0xFF, 0xFE, 0x41]
        let result = try finished { $0.addVariable(name: Array("PATH_INFO".utf8), value: raw) }
        let value = try #require(result.variables["PATH_INFO"])
        #expect(value.bytes == raw)
        #expect(value.utf8 == nil)
        #expect(value.string == "/\u{FFFD}\u{FFFD}A")
    }

    @Test("repeated headers join with a comma, cookies with a semicolon")
    func repeatedHeaders() throws {
        let result = try finished {
            $0.addHeader(name: "Accept", value: "a")
            $0.addHeader(name: "accept", value: "b")
            $0.addHeader(name: "Cookie", value: "x=1")
            $0.addHeader(name: "Cookie", value: "y=2")
        }
        #expect(result.variables["HTTP_ACCEPT"]?.string == "a, b")
        #expect(result.variables["HTTP_COOKIE"]?.string == "x=1; y=2")
    }

    @Test("HTTPS=on makes the url scheme https")
    func scheme() throws {
        #expect(try finished { $0.addVariable(name: "HTTPS", value: "on") }.urlScheme == "https")
        #expect(try finished { $0.addVariable(name: "REQUEST_SCHEME", value: "https") }.urlScheme == "https")
        #expect(try finished { $0.addVariable(name: "HTTPS", value: "off") }.urlScheme == "http")
    }

    @Test("variables past the head limit are refused")
    func headLimit() {
        var builder = EnvironBuilder(gatewayProtocol: .fastcgi, maxBytes: 64)
        builder.addVariable(name: "REQUEST_METHOD", value: "GET")
        builder.addVariable(name: "HTTP_X", value: String(repeating: "a", count: 100))
        #expect(throws: NormalizationError.tooLarge(limit: 64)) { try builder.finish() }
    }

    @Test("names that cannot be environment names are dropped")
    func variableNames() throws {
        let result = try finished {
            $0.addVariable(name: "A=B", value: "1")
            $0.addVariable(name: "", value: "1")
            $0.addVariable(name: "HTTP_X-Y", value: "1")
            $0.addVariable(name: "mod.fcgid_var", value: "ok")
        }
        #expect(result.variables["A=B"] == nil)
        #expect(result.variables[""] == nil)
        #expect(result.variables["HTTP_X-Y"] == nil)
        #expect(result.variables["mod.fcgid_var"]?.string == "ok")
    }
}
