/// wrk's report parsed into numbers, mode lists parsed, and the summary's medians and ratios.
import PosternBench
import Testing

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
        #expect(throws: BenchError.self) { try BenchMode.parseList("fastcgi,gopher") }
    }

    @Test func summarizesMediansAndRatios() {
        func run(_ mode: BenchMode, _ rps: Double, _ index: Int) -> BenchRun {
            BenchRun(mode: mode, repeatIndex: index, result: WrkResult(requestsPerSecond: rps, requests: Int(rps), p50: 1, p99: 2, errors: 0), backendPeakRSS: nil, loadAverage: 0)
        }
        let runs = [run(.cgi, 100, 1), run(.fastcgi, 900, 1), run(.cgi, 300, 2), run(.fastcgi, 1000, 2), run(.cgi, 200, 3), run(.fastcgi, 2000, 3)]
        let rows = BenchSummary.summarize(runs, modes: [.cgi, .fastcgi])
        #expect(rows.map(\.medianRequestsPerSecond) == [200, 1000])
        #expect(rows[1].ratioToCGI == 5)
        #expect(rows[1].ratioToLibfcgi == nil)
        #expect(BenchSummary.markdown(rows).contains("| `fastcgi` |"))
    }
}
