// Every FastCGI feature through Postern's client against a live GatewayServer on 127.0.0.1:0.
import NIOCore
import Postern
import PosternClient
import PosternCore
import PosternEngine
import PosternFastCGI
import Testing

/// Fails if `body` takes longer than `seconds` (a hang is a failure, not a stuck test run).
/// The body runs in a task of its own that is left behind when it overruns: a task group would
/// wait for it, and a body stuck in a call that ignores cancellation (a future's `get()`) would
/// hang the test after all.
func within<T: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let (outcome, continuation) = AsyncStream<Result<T, any Error>?>.makeStream()
    let work = Task {
        do {
            continuation.yield(.success(try await body()))
        } catch {
            continuation.yield(.failure(error))
        }
    }
    let timer = Task {
        try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
        continuation.yield(nil)
    }
    var first = outcome.makeAsyncIterator()
    let result = await first.next() ?? nil
    timer.cancel()
    guard let result else {
        work.cancel()
        throw TestFailure("timed out after \(seconds) s")
    }
    return try result.get()
}

@Suite("FastCGI server, live")
struct LiveServerTests {
    @Test("a RESPONDER gets the CGI environ with FCGI_ROLE and answers through STDOUT")
    func responder() async throws {
        try await withServer { addresses in
            let client = try await connect(addresses)
            let result = try await client.send(ClientRequest(method: "GET", target: "/environ?a=1", headers: [("X-Test", "yes"), ("Proxy", "evil")]))
            #expect(result.protocolStatus == .requestComplete)
            let response = try result.response()
            #expect(response.status.code == 200)
            let text = String(buffer: response.body)
            #expect(text.contains("FCGI_ROLE=RESPONDER\n"))
            #expect(text.contains("QUERY_STRING=a=1\n"))
            #expect(text.contains("HTTP_X_TEST=yes\n"))
            #expect(!text.contains("HTTP_PROXY"))
            await client.close()
        }
    }

    @Test("KEEP_CONN keeps the connection for the next request; without it the server closes")
    func keepConnection() async throws {
        try await withServer { addresses in
            let client = try await connect(addresses)
            for index in 0..<3 {
                let response = try await client.send(ClientRequest(target: "/id?\(index)"), keepConnection: true).response()
                #expect(String(buffer: response.body) == "id=\(index)\n")
            }
            #expect(!client.isClosed)
            let last = try await client.send(ClientRequest(target: "/id?last"), keepConnection: false).response()
            #expect(String(buffer: last.body) == "id=last\n")
            try await within(5) { await client.waitForClose() }
            #expect(client.isClosed)
        }
    }

    @Test("1,000 multiplexed requests over 10 connections all complete with their own answers")
    func multiplexing() async throws {
        var limits = GatewayLimits()
        limits.maxRequestsPerConnection = 128
        try await withServer(limits: limits) { addresses in
            var clients: [FastCGIClient] = []
            for _ in 0..<10 { clients.append(try await connect(addresses)) }
            let all = clients
            let correct = try await within(60) {
                try await withThrowingTaskGroup(of: Bool.self) { group in
                    for index in 0..<1000 {
                        group.addTask {
                            let client = all[index % 10]
                            let response = try await client.send(ClientRequest(method: "POST", target: "/echo", body: ByteBuffer(string: "request \(index)")))
                                .response()
                            return String(buffer: response.body) == "request \(index)"
                        }
                    }
                    var count = 0
                    for try await ok in group where ok { count += 1 }
                    return count
                }
            }
            #expect(correct == 1000)
            for client in clients { await client.close() }
        }
    }

    @Test("GET_VALUES reports FCGI_MAX_CONNS, FCGI_MAX_REQS and FCGI_MPXS_CONNS=1")
    func getValues() async throws {
        try await withServer { addresses in
            let client = try await connect(addresses)
            let values = try await client.getValues(["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS", "NOT_A_VALUE"])
            #expect(values == ["FCGI_MAX_CONNS": "1024", "FCGI_MAX_REQS": "64", "FCGI_MPXS_CONNS": "1"])
            let unknown = try await client.sendManagement(FastCGIRecord(type: FastCGIRecordType(rawValue: 77), requestID: 0))
            #expect(unknown.type == .unknownType)
            #expect(unknown.content.getInteger(at: unknown.content.readerIndex, as: UInt8.self) == 77)
            // The connection still serves requests.
            #expect(try await client.send(ClientRequest(target: "/id?after")).response().status.code == 200)
            await client.close()
        }
    }

    @Test("beyond FCGI_MAX_REQS: OVERLOADED; an unknown role: UNKNOWN_ROLE")
    func refusals() async throws {
        var limits = GatewayLimits()
        limits.maxRequestsPerConnection = 2
        let app = ProbeApp()
        try await withServer(app: app, limits: limits) { addresses in
            let client = try await connect(addresses)
            let first = try await client.start(ClientRequest(target: "/slow"))
            let second = try await client.start(ClientRequest(target: "/slow"))
            let third = try await client.send(ClientRequest(target: "/id?3"))
            #expect(third.protocolStatus == .overloaded)
            let unknownRole = try await client.send(ClientRequest(target: "/id?4"), role: FastCGIRole(rawValue: 9))
            #expect(unknownRole.protocolStatus == .unknownRole)
            first.abort()
            second.abort()
            _ = try await within(10) { try await first.result() }
            _ = try await within(10) { try await second.result() }
            await client.close()
        }
        #expect(app.cancellations.count == 2)
    }

    @Test("ABORT_REQUEST cancels the application's task and END_REQUEST follows")
    func abort() async throws {
        let app = ProbeApp()
        try await withServer(app: app) { addresses in
            let client = try await connect(addresses)
            let call = try await client.start(ClientRequest(target: "/slow"))
            try await Task.sleep(for: .milliseconds(200))
            call.abort()
            let result = try await within(10) { try await call.result() }
            #expect(result.protocolStatus == .requestComplete)
            #expect(app.cancellations.count == 1)
            // The id is free again and the connection still works.
            #expect(String(buffer: try await client.send(ClientRequest(target: "/id?next")).response().body) == "id=next\n")
            await client.close()
        }
    }

    @Test("an AUTHORIZER with no FCGI_STDIN at all is answered when PARAMS end; Variable-* headers pass")
    func authorizer() async throws {
        try await withServer { addresses in
            let client = try await connect(addresses)
            var request = ClientRequest(target: "/auth", headers: [("Authorization", "Bearer ok")])
            request.extraVariables = [("FCGI_APACHE_ROLE", "AUTHORIZER")]
            let allowed = try await within(10) { [request] in try await client.send(request, role: .authorizer, sendsStdin: false).response() }
            #expect(allowed.status.code == 200)
            #expect(allowed.headers["Variable-AUTH_USER"] == "alice")
            #expect(allowed.headers["Variable-AUTH_ROLE"] == "AUTHORIZER")
            let denied = try await within(10) { try await client.send(ClientRequest(target: "/auth"), role: .authorizer, sendsStdin: false).response() }
            #expect(denied.status.code == 403)
            var environRequest = ClientRequest(target: "/environ")
            environRequest.extraVariables = [("FCGI_APACHE_ROLE", "AUTHENTICATOR")]
            let environ = String(
                buffer: try await within(10) { [environRequest] in try await client.send(environRequest, role: .authorizer, sendsStdin: false).response() }.body
            )
            #expect(environ.contains("FCGI_ROLE=AUTHORIZER\n"))
            #expect(environ.contains("FCGI_APACHE_ROLE=AUTHENTICATOR\n"))
            await client.close()
        }
    }

    @Test("a FILTER reads FCGI_DATA as filterData beside the body, with FCGI_DATA_LENGTH and FCGI_DATA_LAST_MOD")
    func filter() async throws {
        try await withServer { addresses in
            let client = try await connect(addresses)
            var request = ClientRequest(method: "POST", target: "/filter", body: ByteBuffer(string: "in"))
            request.extraVariables = [("FCGI_DATA_LENGTH", "11"), ("FCGI_DATA_LAST_MOD", "1700000000")]
            let response = try await client.send(request, role: .filter, filterData: ByteBuffer(string: "hello world")).response()
            #expect(String(buffer: response.body) == "stdin=in data=HELLO WORLD length=11 lastmod=1700000000\n")
            let environ = String(buffer: try await client.send(ClientRequest(target: "/environ"), role: .filter, filterData: ByteBuffer()).response().body)
            #expect(environ.contains("FCGI_ROLE=FILTER\n"))
            await client.close()
        }
    }

    @Test("bodies stream both ways: 1 MiB echoed, a 200,000-byte streamed response in records of at most 65535")
    func streaming() async throws {
        try await withServer { addresses in
            let client = try await connect(addresses)
            var body = ByteBuffer()
            for index in 0..<(1 << 20) { body.writeInteger(UInt8(truncatingIfNeeded: index &* 31)) }
            let echoed = try await client.send(ClientRequest(method: "POST", target: "/echo", body: body)).response()
            #expect(echoed.body == body)
            let big = try await client.send(ClientRequest(target: "/big?200000")).response()
            #expect(big.body.readableBytes == 200_000)
            #expect(big.body.readableBytesView.enumerated().allSatisfy { $0.element == UInt8(truncatingIfNeeded: $0.offset) })
            await client.close()
        }
    }

    @Test("the application's error stream arrives as FCGI_STDERR")
    func stderr() async throws {
        try await withServer { addresses in
            let client = try await connect(addresses)
            let result = try await client.send(ClientRequest(target: "/stderr"))
            #expect(String(buffer: result.stderr) == "probe: something to log\n")
            #expect(String(buffer: try result.response().body) == "logged\n")
            await client.close()
        }
    }

    @Test("CONTENT_LENGTH and the end of STDIN must agree: the reading app fails cleanly with a 500")
    func lengthMismatch() async throws {
        try await withServer { addresses in
            let client = try await connect(addresses)
            var params = ClientRequest(method: "POST", target: "/read").cgiVariables().filter { $0.name != "CONTENT_LENGTH" }
            params.append(("CONTENT_LENGTH", "10"))
            let short = try await client.start(ClientRequest(method: "POST", target: "/read", body: ByteBuffer(string: "12345")), params: params).result()
            #expect(try short.response().status.code == 500)
            #expect(String(buffer: short.stderr).contains("CONTENT_LENGTH is 10"))
            var longParams = params.filter { $0.name != "CONTENT_LENGTH" }
            longParams.append(("CONTENT_LENGTH", "2"))
            let long = try await client.start(ClientRequest(method: "POST", target: "/read", body: ByteBuffer(string: "12345")), params: longParams).result()
            #expect(try long.response().status.code == 500)
            // Unread input is drained: a request that ignores its body still completes and the
            // connection carries the next one.
            let ignored = try await client.send(ClientRequest(method: "POST", target: "/id?x", body: ByteBuffer(repeating: 0x41, count: 300_000))).response()
            #expect(String(buffer: ignored.body) == "id=x\n")
            #expect(try await client.send(ClientRequest(target: "/id?y")).response().status.code == 200)
            await client.close()
        }
    }

    @Test(
        "malformed input closes that connection only",
        arguments: [
            "02 01 0001 0008 00 00 0001000000000000",  // version 2
            "01 01 0001 0003 00 00 000100",  // BEGIN_REQUEST body of 3 bytes
            "01 01 0001 0008 00 00 0001010000000000 01 05 0001 0002 00 00 6869",  // STDIN before PARAMS end
            "01 01 0001 0008 00 00 0001010000000000 01 04 0001 0005 00 00 ff7fffff01 01 04 0001 0000 00 00",  // 2 GiB pair length
        ])
    func malformed(hex: String) async throws {
        try await withServer { addresses in
            let good = try await connect(addresses)
            let bad = try await connect(addresses)
            try await bad.writeRaw(bytes(hex))
            try await within(5) { await bad.waitForClose() }
            #expect(bad.isClosed)
            #expect(try await good.send(ClientRequest(target: "/id?ok")).response().status.code == 200)
            await good.close()
        }
    }

    @Test("a request whose params break a normalizer rule gets 400, and the connection lives on")
    func badParams() async throws {
        try await withServer { addresses in
            let client = try await connect(addresses)
            let params = ClientRequest(target: "/id").cgiVariables().filter { $0.name != "REQUEST_METHOD" }
            let result = try await client.start(ClientRequest(target: "/id"), params: params).result()
            #expect(try result.response().status.code == 400)
            #expect(try await client.send(ClientRequest(target: "/id?z")).response().status.code == 200)
            await client.close()
        }
    }

    @Test("an idle connection is closed after the idle timeout; one with a request in progress is not")
    func idleTimeout() async throws {
        var limits = GatewayLimits()
        // Generous against a loaded machine: what is proven is "closed by the server's idle timer".
        // The busy connection sends its request first, so a starved test process cannot leave it
        // silent for a whole timeout before its request starts.
        limits.idleTimeoutSeconds = 3
        let app = ProbeApp()
        try await withServer(app: app, limits: limits) { addresses in
            let busy = try await connect(addresses)
            let call = try await busy.start(ClientRequest(target: "/slow"))
            let idle = try await connect(addresses)
            let opened = ContinuousClock.now
            try await within(30) { await idle.waitForClose() }
            #expect(idle.isClosed)
            #expect(ContinuousClock.now - opened > .seconds(2), "closed before its idle timeout")
            try await Task.sleep(for: .seconds(4))
            #expect(!busy.isClosed)
            call.abort()
            #expect(try await within(5) { try await call.result() }.protocolStatus == .requestComplete)
            await busy.close()
        }
    }
}
