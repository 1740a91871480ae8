import Foundation
import PosternFrontEnds
import Testing

/// wrk's report parsed into numbers, mode lists parsed, and the summary's medians and ratios.
@testable import PosternBench

@Suite struct WrkResultTests {
    static let sample = """
        Running 1s test @ http://127.0.0.1:8080/fastcgi/hello
          1 threads and 16 connections
          Thread Stats   Avg      Stdev     Max   +/- Stdev
            Latency   512.00us  100.00us   3.00ms   90.00%
            Req/Sec    20.00k     1.00k   22.00k    80.00%
          Latency Distribution
             50%  480.00us
             75%  550.00us
             90%  700.00us
             99%    1.50ms
          20123 requests in 1.00s, 3.00MB read
          Socket errors: connect 0, read 2, write 0, timeout 1
          Non-2xx or 3xx responses: 4
        Requests/sec:  20100.50
        Transfer/sec:      3.00MB
        """

    @Test func parsesTheSummary() throws {
        let result = try #require(WrkResult.parse(Self.sample))
        #expect(result.requestsPerSecond == 20100.50)
        #expect(result.requests == 20123)
        #expect(abs(result.p50 - 0.48) < 1e-9)
        #expect(abs(result.p99 - 1.5) < 1e-9)
        #expect(result.errors == 7)
    }

    @Test func refusesOutputWithoutLatencyDistribution() {
        #expect(WrkResult.parse("Requests/sec: 10\n  5 requests in 1.00s, 1KB read\n") == nil)
    }

    @Test func parsesModeLists() throws {
        #expect(try BenchMode.parseList("cgi, fastcgi,cgi") == [.cgi, .fastcgi])
        #expect(try BenchMode.parseList("uwsgi-python") == [.uwsgiPythonFastCGI, .uwsgiPythonSCGI, .uwsgiPythonUWSGI])
        #expect(try BenchMode.parseList("scgi,floor") == [.scgi, .floorFastCGI, .floorSCGI, .floorUWSGI])
        #expect(throws: BenchError.self) { try BenchMode.parseList("fastcgi,gopher") }
    }

    @Test("the TLS modes go through nginx's suwsgi://, checked against the bench's CA; the other front-ends say why not")
    func tlsModes() throws {
        #expect(try BenchMode.parseList("suwsgi,uwsgi-python-ssl") == [.suwsgi, .uwsgiPythonSSL])
        for kind in [FrontEnd.Kind.lighttpd, .apache] {
            #expect(BenchFrontEndConfig.unsupported(.suwsgi, on: kind)?.contains("no TLS to uwsgi") == true)
            #expect(BenchFrontEndConfig.unsupported(.uwsgiPythonSSL, on: kind) != nil)
        }
        #expect(BenchFrontEndConfig.unsupported(.suwsgi, on: .nginx) == nil)
        let config = BenchFrontEndConfig.nginx(
            [.suwsgi: BenchEndpoint(address: .tcp(port: 7101)), .uwsgi: BenchEndpoint(address: .tcp(port: 7102))], "/tmp/bench")
        #expect(config.contains("uwsgi_pass suwsgi://127.0.0.1:7101;"))
        #expect(config.contains("uwsgi_ssl_trusted_certificate /tmp/bench/tls/ca.pem;"))
        #expect(config.contains("uwsgi_ssl_session_reuse on;"))
        #expect(config.contains("uwsgi_pass 127.0.0.1:7102;"))
    }

    @Test func summarizesMediansAndRatios() {
        func run(_ mode: BenchMode, _ rps: Double, _ index: Int) -> BenchRun {
            BenchRun(
                mode: mode, repeatIndex: index, result: WrkResult(requestsPerSecond: rps, requests: Int(rps), p50: 1, p99: 2, errors: 0), backendPeakRSS: nil,
                loadAverage: 0)
        }
        let runs = [run(.cgi, 100, 1), run(.fastcgi, 900, 1), run(.cgi, 300, 2), run(.fastcgi, 1000, 2), run(.cgi, 200, 3), run(.fastcgi, 2000, 3)]
        let rows = BenchSummary.summarize(runs, modes: [.cgi, .fastcgi])
        #expect(rows.map(\.medianRequestsPerSecond) == [200, 1000])
        #expect(rows[1].ratioToCGI == 5)
        #expect(rows[1].ratioToLibfcgi == nil)
        #expect(BenchSummary.markdown(rows).contains("| `fastcgi` |"))
    }

    @Test func summarizesTheBackendCPUPerRequest() {
        func run(_ cpu: Double?, _ index: Int) -> BenchRun {
            BenchRun(
                mode: .scgi, repeatIndex: index, result: WrkResult(requestsPerSecond: 10, requests: 10, p50: 1, p99: 2, errors: 0),
                backendPeakRSS: nil, loadAverage: 0, backendMicrosecondsPerRequest: cpu)
        }
        let rows = BenchSummary.summarize([run(30, 1), run(50, 2), run(40, 3), run(nil, 4)], modes: [.scgi])
        #expect(rows[0].backendMicrosecondsPerRequest == 40)
        #expect(BenchSummary.markdown(rows).contains("| 40.0 |"))
        #expect(BenchSummary.summarize([run(nil, 1)], modes: [.scgi])[0].backendMicrosecondsPerRequest == nil)
    }

    /// The CPU this very process has used, read from /proc, grows with work done.
    @Test func readsCPUTimeFromProc() throws {
        let before = try #require(BackendCPU.seconds(inTreeOf: getpid()))
        var x: UInt64 = 1
        var after = before
        let deadline = ContinuousClock.now + .seconds(20)
        // Busy until /proc shows a tenth of a second more (a starved machine just takes longer).
        while after - before < 0.1 && ContinuousClock.now < deadline {
            for i in 0..<1_000_000 { x = x &* 6_364_136_223_846_793_005 &+ UInt64(i) }
            after = try #require(BackendCPU.seconds(inTreeOf: getpid()))
        }
        #expect(after - before >= 0.1, "\(x)")
        #expect(BackendCPU.seconds(inTreeOf: -1) == nil)
    }

    @Test("a smoke run (one short run) says so, draws no spread; the direct modes are a group of their own")
    func chartTellsASmokeRunFromAMeasurement() {
        func run(_ mode: BenchMode, _ rps: Double, _ index: Int) -> BenchRun {
            BenchRun(
                mode: mode, repeatIndex: index, result: WrkResult(requestsPerSecond: rps, requests: Int(rps), p50: 1, p99: 2, errors: 0), backendPeakRSS: nil,
                loadAverage: 0)
        }
        let once = BenchSummary.summarize([run(.scgi, 900, 1), run(.http, 40_000, 1)], modes: [.scgi, .http])
        let quick = BenchReport(
            frontEnd: "nginx", duration: 1, connections: 16, repeats: 1, cores: 2, loadAverageBefore: 0, loadAverageAfter: 0, date: "", skipped: [],
            summary: once, runs: [])
        #expect(quick.isSmokeTest)
        #expect(quick.title.hasPrefix("smoke test, not a measurement"))
        let smoke = BenchChart.svg(once, title: quick.title, frontEnd: "nginx")
        #expect(!smoke.contains("<line"))
        #expect(smoke.contains("one run: no spread"))
        #expect(!BenchSummary.markdown(once).contains("±"))
        // Two groups, each on its own scale: the SCGI bar is full width in its group although
        // the HTTP mode without a front-end is 44 times faster.
        #expect(smoke.contains("through nginx") && smoke.contains("without a front-end"))
        #expect(smoke.contains("width=\"300.0\" height=\"15\" fill=\"#1f77b4\"/>\n<text x=\"474.0\" y=\"94.0\">900</text>"))
        let repeated = BenchSummary.summarize([run(.scgi, 900, 1), run(.scgi, 1000, 2), run(.scgi, 800, 3)], modes: [.scgi])
        let measured = BenchReport(
            frontEnd: "nginx", duration: 5, connections: 16, repeats: 3, cores: 2, loadAverageBefore: 0, loadAverageAfter: 0, date: "", skipped: [],
            summary: repeated, runs: [])
        #expect(!measured.isSmokeTest)
        let chart = BenchChart.svg(repeated, title: measured.title, frontEnd: "nginx")
        #expect(chart.contains("<line") && chart.contains("whisker: min–max"))
        #expect(!chart.contains("without a front-end"))
        #expect(BenchSummary.markdown(repeated).contains("±11 %"))
    }
}
