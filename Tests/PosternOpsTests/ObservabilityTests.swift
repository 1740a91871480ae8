import Foundation
import NIOCore
import PosternClient
import PosternCore
import PosternFastCGI
import PosternTestSupport
import Testing

extension Ops {
    /// The access log and the status endpoint, live: requests over HTTP and FastCGI to a real
    /// `postern serve --app ops` process, then what it wrote and what it reports.
    @Suite(.serialized) struct ObservabilityTests {
        @Test func accessLogHasOneCommonLogFormatLinePerRequest() async throws {
            let fastcgiPort = try Ports.free()
            let directory = try Paths.makeTestDirectory("access-log-file")
            let logPath = directory + "/access.log"
            let server = try await OpsServer.start("access-log", ["--access-log", logPath, "--fastcgi", "127.0.0.1:\(fastcgiPort)"], statusPort: false)
            defer { server.process.stop() }
            try await Wait.forPort(fastcgiPort)
            #expect(await server.get("/hello?x=1").status == 200)
            #expect(await server.get("/sleep?ms=30").status == 200)
            let client = try await FastCGIClient.connect(to: .tcp(host: "127.0.0.1", port: fastcgiPort))
            _ = try await client.send(ClientRequest(target: "/hello?via=fcgi"))
            _ = try await client.send(ClientRequest(method: "POST", target: "/pid", body: ByteBuffer(string: "x")))
            await client.close()

            var lines: [String] = []
            for _ in 0..<40 {
                lines = ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
                if lines.count >= 4 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(lines.count == 4, "one line per request: \(lines)")
            // host ident user [dd/Mon/yyyy:hh:mm:ss +zzzz] "request line" status bytes microseconds
            let pattern = #/^(\S+) - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "([^"]*)" (\d{3}) (\d+|-) (\d+)$/#
            var parsed: [(host: String, request: String, status: Int, bytes: String, micros: Int)] = []
            for line in lines {
                guard let match = line.wholeMatch(of: pattern) else {
                    Issue.record("not common log format + duration: \(line)")
                    continue
                }
                parsed.append((String(match.1), String(match.2), Int(match.3)!, String(match.4), Int(match.5)!))
            }
            guard parsed.count == 4 else { return }
            #expect(parsed[0].host == "127.0.0.1")
            #expect(parsed[0].request == "GET /hello?x=1 HTTP/1.1")
            #expect(parsed[0].status == 200)
            #expect(parsed[0].bytes == "14", "Hello, World!\\n")
            #expect(parsed[1].request == "GET /sleep?ms=30 HTTP/1.1")
            #expect(parsed[1].micros >= 30_000, "the duration covers the app's 30 ms: \(parsed[1].micros)")
            #expect(parsed[2].request.hasPrefix("GET /hello?via=fcgi "), "FastCGI request: \(parsed[2].request)")
            #expect(parsed[2].status == 200)
            #expect(parsed[3].request.hasPrefix("POST /pid "))
            #expect(parsed[3].status == 200)
        }

        @Test func statusCountsRequestsByProtocolAndMetricsIsPrometheusText() async throws {
            let fastcgiPort = try Ports.free()
            let server = try await OpsServer.start("status", ["--fastcgi", "127.0.0.1:\(fastcgiPort)"])
            defer { server.process.stop() }
            try await Wait.forPort(fastcgiPort)
            for _ in 0..<3 { #expect(await server.get("/hello").status == 200) }
            let client = try await FastCGIClient.connect(to: .tcp(host: "127.0.0.1", port: fastcgiPort))
            for _ in 0..<2 { _ = try await client.send(ClientRequest(target: "/hello")) }
            await client.close()

            let status = try await server.status()
            #expect(status["mode"] as? String == "single")
            #expect(status["requests"] as? Int == 5, "\(status)")
            let byProtocol = status["by_protocol"] as? [String: Int] ?? [:]
            #expect(byProtocol == ["http": 3, "fastcgi": 2], "\(status)")
            #expect((status["by_status"] as? [String: Int])?["200"] == 5)
            #expect(status["in_flight"] as? Int == 0)
            // One process: it is the one serving process, in the JSON and in /metrics alike.
            #expect(status["worker_count"] as? Int == 1)
            let workers = status["workers"] as? [[String: Any]] ?? []
            #expect(workers.count == 1 && workers.first?["pid"] as? Int == Int(server.process.pid) && workers.first?["requests"] as? Int == 5, "\(status)")
            // The percentiles are estimates inside the bucket that holds them, ordered, and the
            // buckets they come from are in the document.
            let latency = status["latency"] as? [String: Any] ?? [:]
            let p50 = latency["p50_seconds"] as? Double ?? -1
            let p90 = latency["p90_seconds"] as? Double ?? -1
            let p99 = latency["p99_seconds"] as? Double ?? -1
            #expect(0 < p50 && p50 <= p90 && p90 <= p99, "\(latency)")
            let buckets = latency["buckets"] as? [[String: Any]] ?? []
            #expect(buckets.last?["count"] as? Int == 5, "\(latency)")
            if let holding = buckets.firstIndex(where: { ($0["count"] as? Int ?? 0) * 2 >= 5 }) {
                let upper = buckets[holding]["le"] as? Double ?? .infinity
                let lower = holding == 0 ? 0 : buckets[holding - 1]["le"] as? Double ?? 0
                #expect(lower <= p50 && p50 <= upper, "p50 \(p50) outside its bucket (\(lower), \(upper)]")
            } else {
                Issue.record("no bucket holds the median: \(latency)")
            }

            let (code, metrics) = await OpsServer.get(port: server.statusPort, "/metrics")
            #expect(code == 200)
            let samples = metrics.split(separator: "\n").filter { !$0.hasPrefix("#") }
            #expect(metrics.contains("# TYPE postern_requests_total counter"), "\(metrics)")
            #expect(samples.contains(#"postern_requests_total{protocol="http"} 3"#), "\(metrics)")
            #expect(samples.contains(#"postern_requests_total{protocol="fastcgi"} 2"#), "\(metrics)")
            #expect(samples.contains(#"postern_responses_total{status="200"} 5"#), "\(metrics)")
            #expect(samples.contains("postern_workers 1.0"), "\(metrics)")
            // A real histogram: cumulative buckets ending in +Inf, then _sum and _count.
            #expect(metrics.contains("# TYPE postern_request_duration_seconds histogram"), "\(metrics)")
            let counts = samples.filter { $0.hasPrefix("postern_request_duration_seconds_bucket{") }.compactMap { Int($0.split(separator: " ").last ?? "") }
            #expect(counts.count == 21 && counts == counts.sorted() && counts.last == 5, "\(counts)")
            #expect(samples.contains(#"postern_request_duration_seconds_bucket{le="+Inf"} 5"#), "\(metrics)")
            #expect(samples.contains("postern_request_duration_seconds_count 5"), "\(metrics)")
            #expect(!metrics.contains("quantile="), "no percentiles dressed up as a summary: \(metrics)")
            // Every sample line is `name{labels} value`.
            for sample in samples {
                #expect(sample.wholeMatch(of: #/[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+-]+/#) != nil, "\(sample)")
            }
        }

        @Test("--allow applies to the status page: a peer outside it gets no status")
        func statusPageHonoursTheAllowList() async throws {
            let server = try await OpsServer.start("status-allow", ["--allow", "10.0.0.0/8"])
            defer { server.process.stop() }
            #expect(await OpsServer.get(port: server.statusPort, "/").status == 0, "127.0.0.1 is outside --allow 10.0.0.0/8")
            #expect(await OpsServer.get(port: server.statusPort, "/metrics").status == 0)
            // A flood from outside the list is summarized, not logged once a connection.
            for _ in 0..<50 { _ = await server.get("/hello") }
            let lines = server.process.output.split(separator: "\n").filter { $0.contains("refused by the allow-list") }
            #expect(!lines.isEmpty && lines.count <= 4, "52 refusals in about a second: \(lines.count) lines")
            // The first is said at once (the start-up probes of both ports may race to it).
            let first = lines.first.flatMap { $0.firstMatch(of: /refused=(\d+)/).flatMap { Int($0.1) } } ?? -1
            #expect((1...3).contains(first), "the first refusal is said at once: \(lines)")
            let open = try await OpsServer.start("status-allow-loopback", ["--allow", "127.0.0.0/8"])
            defer { open.process.stop() }
            #expect(await OpsServer.get(port: open.statusPort, "/").status == 200)
        }

        @Test("--validate: a violation over FastCGI goes to FCGI_STDERR and to Postern's own log; over HTTP it is logged once")
        func validatorViolationsReachTheLog() async throws {
            let fastcgiPort = try Ports.free()
            let server = try await OpsServer.start("validate-log", ["--validate", "--fastcgi", "127.0.0.1:\(fastcgiPort)"], statusPort: false)
            defer { server.process.stop() }
            try await Wait.forPort(fastcgiPort)
            let client = try await FastCGIClient.connect(to: .tcp(host: "127.0.0.1", port: fastcgiPort))
            let result = try await client.send(ClientRequest(target: "/no-content-type"))
            await client.close()
            #expect(try result.response().status.code == 500)
            #expect(String(buffer: result.stderr).contains("postern validator: response: no Content-Type for status 200"), "\(String(buffer: result.stderr))")
            #expect(
                try await eventually { server.process.output.contains("contract violation: response: no Content-Type for status 200") },
                "\(server.process.output)")
            #expect(server.process.output.contains("GET /no-content-type"), "the log line names the request: \(server.process.output)")
            #expect(await server.get("/no-content-type").status == 500)
            try await Task.sleep(for: .milliseconds(200))
            let lines = server.process.output.split(separator: "\n").filter { $0.contains("no Content-Type for status 200") }
            #expect(lines.count == 2, "once for FastCGI (its stderr went to the client), once for HTTP (its error stream is the log): \(lines)")
        }

        @Test("--cgi-root: a missing script is the client's mistake, logged at info; a broken script is an error")
        func cgiClientMistakesAreNotServerErrors() async throws {
            let server = try await OpsServer.start("cgi-log-levels", ["--cgi-root", Paths.root + "/examples/cgi-bin"], statusPort: false)
            defer { server.process.stop() }
            #expect(await server.get("/no-such-script.sh").status == 404)
            #expect(try await eventually { server.process.output.contains("postern: cgi:") }, "\(server.process.output)")
            let lines = server.process.output.split(separator: "\n").filter { $0.contains("postern: cgi:") }
            #expect(lines.allSatisfy { $0.contains(" info ") } && !lines.isEmpty, "\(lines)")
            #expect(!server.process.output.contains(" error "), "\(server.process.output)")
        }

        @Test("HTTP requests refused before the app (malformed or smuggling: 400; a body over the limit: 413) are access-logged and counted")
        func refusedHTTPRequestsAreLogged() async throws {
            let directory = try Paths.makeTestDirectory("access-log-refused")
            let logPath = directory + "/access.log"
            let server = try await OpsServer.start("access-log-refused", ["--access-log", logPath, "--max-body-bytes", "10"])
            defer { server.process.stop() }
            let garbage = try await BlockingClient.exchange(port: server.port, Array("NOT HTTP AT ALL\r\n\r\n".utf8))
            #expect(String(decoding: garbage, as: UTF8.self).hasPrefix("HTTP/1.1 400"), "\(String(decoding: garbage, as: UTF8.self))")
            let smuggle = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            let refused = try await BlockingClient.exchange(port: server.port, Array(smuggle.utf8))
            #expect(String(decoding: refused, as: UTF8.self).hasPrefix("HTTP/1.1 400"))
            let large = "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n"
            let tooLarge = try await BlockingClient.exchange(port: server.port, Array(large.utf8))
            #expect(String(decoding: tooLarge, as: UTF8.self).hasPrefix("HTTP/1.1 413"))
            #expect(await server.get("/hello").status == 200)
            var lines: [String] = []
            for _ in 0..<40 {
                lines = ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
                if lines.count >= 4 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(lines.count == 4, "\(lines)")
            // SwiftNIO's parser refuses the first two before any head exists: Apache's "-" for the line.
            #expect(lines.filter { $0.hasPrefix("127.0.0.1 - - [") && $0.contains("\"- - -\" 400 ") }.count == 2, "\(lines)")
            #expect(lines.contains { $0.contains("\"POST /upload HTTP/1.1\" 413 ") }, "\(lines)")
            let status = try await server.status()
            #expect((status["by_status"] as? [String: Int])?["400"] == 2, "\(status)")
            #expect((status["by_status"] as? [String: Int])?["413"] == 1, "\(status)")
            #expect(status["in_flight"] as? Int == 0, "a refusal never started: \(status)")
        }

        @Test(
            "--slow-log: a request past the threshold is logged while it still runs, with its request line and pid, then its total; fast ones are not",
            arguments: [1, 2])
        func slowRequestsAreLoggedWhileTheyRun(workers: Int) async throws {
            let server = try await OpsServer.start("slow-log-\(workers)", ["--slow-log", "0.5", "--workers", "\(workers)"])
            defer { server.process.stop() }
            for _ in 0..<5 { #expect(await server.get("/hello").status == 200) }
            let started = ContinuousClock.now
            let slow = Task { await server.get("/sleep?ms=2500") }
            let seen = try await eventually(2) { server.process.output.contains("slow request, still running") }
            let seenAfter = ContinuousClock.now - started
            #expect(seen, "\(server.process.output)")
            #expect(seenAfter < .milliseconds(2300), "logged before the request ended: \(seenAfter)")
            let line = server.process.output.split(separator: "\n").first { $0.contains("slow request, still running") } ?? ""
            #expect(line.contains("request=GET /sleep?ms=2500 HTTP/1.1") && line.contains("pid="), "\(line)")
            #expect(await slow.value.status == 200)
            #expect(try await eventually { server.process.output.contains("slow request ended") }, "\(server.process.output)")
            #expect(!server.process.output.contains("request=GET /hello"), "a fast request was logged as slow")
            let counted = try await eventually { (try await server.status()["slow_requests"] as? Int) == 1 }
            #expect(counted, "slowRequests on the status page")
        }
    }
}
