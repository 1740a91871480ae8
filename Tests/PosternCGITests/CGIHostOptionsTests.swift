// The `postern serve` options of the CGI script host: parsing and the refusals.
import ArgumentParser
import Postern
import PosternCGI
import PosternCGIHost
import Testing

@Suite("CGI host options")
struct CGIHostOptionsTests {
    @Test("--cgi-root, --cgi-timeout, --cgi-max-concurrency and repeated --pass-env reach the configuration")
    func parses() throws {
        let options = try CGIHostOptions.parse([
            "--cgi-root", "/srv/cgi", "--cgi-timeout", "2.5", "--cgi-max-concurrency", "3",
            "--pass-env", "LANG", "--pass-env", "TZ",
        ])
        let configuration = try #require(options.configuration)
        #expect(configuration.root == "/srv/cgi")
        #expect(configuration.timeoutSeconds == 2.5)
        #expect(configuration.maxConcurrency == 3)
        #expect(configuration.passEnvironment == ["LANG", "TZ"])
        #expect(try CGIHostOptions.parse([]).configuration == nil)
    }

    @Test("a zero timeout, zero concurrency or --pass-env HTTP_PROXY is refused with a clear message")
    func refuses() {
        #expect(throws: (any Error).self) { try CGIHostOptions.parse(["--cgi-root", "/x", "--cgi-timeout", "0"]) }
        #expect(throws: (any Error).self) { try CGIHostOptions.parse(["--cgi-root", "/x", "--cgi-max-concurrency", "0"]) }
        do {
            _ = try CGIHostOptions.parse(["--cgi-root", "/x", "--pass-env", "HTTP_PROXY"])
            Issue.record("--pass-env HTTP_PROXY was accepted")
        } catch {
            #expect(CGIHostOptions.message(for: error).contains("httpoxy"))
        }
    }

    @Test("a missing --cgi-root directory is a start-up error that names it")
    func missingRoot() {
        #expect(throws: CGIScriptResolutionError.rootMissing("/no/such/dir")) {
            try CGIScriptHost(configuration: CGIScriptHostConfiguration(root: "/no/such/dir"), gatewayEnvironment: [:])
        }
    }
}
