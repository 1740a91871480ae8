// The CGI launch decision and ISINDEX words (RFC 3875 §4.4), as plain values.
import PosternCGI
import Testing

@Suite("CGI launch decision")
struct CGILaunchDecisionTests {
    @Test("ISINDEX words: split on +, percent-decoded; none when the query has =")
    func words() {
        #expect(ISINDEXQuery.words("foo+bar%20baz") == ["foo", "bar baz"])
        #expect(ISINDEXQuery.words("a=b+c") == [])
        #expect(ISINDEXQuery.words("") == [])
        #expect(ISINDEXQuery.words("bad%2") == [])
        #expect(ISINDEXQuery.words("nul%00") == [])
    }

    @Test("GATEWAY_INTERFACE decides, fd 0 listening wins, listener flags win unless they are the query's words")
    func decision() {
        func decide(_ arguments: [String], _ gateway: String? = "CGI/1.1", query: String? = "", fd0: Bool = false) -> Bool {
            CGILaunchDecision.isCGIRequest(arguments: ["app"] + arguments, gatewayInterface: gateway, queryString: query, fd0IsListening: fd0)
        }
        #expect(decide([]))
        #expect(!decide([], nil))
        #expect(!decide([], fd0: true))
        #expect(!decide(["--http", "127.0.0.1:8080"]))
        #expect(!decide(["--fastcgi=unix:/run/app.sock"]))
        #expect(decide(["--http", "0.0.0.0:80"], query: "--http+0.0.0.0%3A80"))
        #expect(decide(["words", "here"], query: "words+here"))
        #expect(decide(["--log-level", "debug"]))
    }
}
