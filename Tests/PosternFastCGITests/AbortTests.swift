import NIOCore
import PosternClient
import PosternCore
import PosternFastCGI
import Testing

/// FCGI_ABORT_REQUEST in every state of a request (FastCGI 1.0 §5.4): the application's task is
/// cancelled, FCGI_END_REQUEST follows, nothing is left running, and on a kept connection the
/// other requests and the connection itself carry on.
@Suite struct AbortTests {
    /// A POST declaring `contentLength` bytes, of which the client sends none by itself.
    static func post(_ target: String, contentLength: Int) -> (ClientRequest, [(name: String, value: String)]) {
        let request = ClientRequest(method: "POST", target: target)
        let params = request.cgiVariables().filter { $0.name != "CONTENT_LENGTH" } + [("CONTENT_LENGTH", String(contentLength))]
        return (request, params)
    }

    static func stream(_ type: FastCGIRecordType, _ id: UInt16, _ text: String, end: Bool = false) -> ByteBuffer {
        var out = ByteBuffer()
        if !text.isEmpty { FastCGIRecordEncoder.writeStream(type: type, requestID: id, content: ByteBuffer(string: text), into: &out) }
        if end { FastCGIRecordEncoder.writeStreamEnd(type: type, requestID: id, into: &out) }
        return out
    }

    /// Aborts `call` and checks END_REQUEST, the cancellation and the live count; then the kept
    /// connection still serves a request.
    static func abortAndCheck(_ call: FastCGIClient.FastCGIClientCall, client: FastCGIClient, app: ProbeApp, cancellations: Int = 1) async throws {
        call.abort()
        let result = try await within(10) { try await call.result() }
        #expect(result.protocolStatus == .requestComplete)
        try await eventually { guard app.live.count == 0 else { throw TestFailure("\(app.live.count) still running") } }
        #expect(app.cancellations.count == cancellations)
        #expect(String(buffer: try await client.send(ClientRequest(target: "/id?after")).response().body) == "id=after\n")
    }

    @Test("abort before any FCGI_STDIN")
    func beforeAnyStdin() async throws {
        let app = ProbeApp()
        try await withServer(app: app) { addresses in
            let client = try await connect(addresses)
            let (request, params) = Self.post("/echo", contentLength: 1_000_000)
            let call = try await client.start(request, sendsStdin: false, params: params)
            try await eventually { guard app.live.count > 0 else { throw TestFailure("not started") } }
            try await Self.abortAndCheck(call, client: client, app: app)
            await client.close()
        }
    }

    /// The reported case: CONTENT_LENGTH 1,000,000, 10 bytes of STDIN, then ABORT_REQUEST; the
    /// echo app streams what it reads, so its response has begun.
    @Test("abort while the application waits for more FCGI_STDIN")
    func duringStdin() async throws {
        let app = ProbeApp()
        try await withServer(app: app) { addresses in
            let client = try await connect(addresses)
            let (request, params) = Self.post("/echo", contentLength: 1_000_000)
            let call = try await client.start(request, sendsStdin: false, params: params)
            try await client.writeRaw(Self.stream(.stdin, call.requestID, "0123456789"))
            try await eventually { guard app.live.count > 0 else { throw TestFailure("not started") } }
            try await Task.sleep(for: .milliseconds(100))
            try await Self.abortAndCheck(call, client: client, app: app)
            await client.close()
        }
    }

    @Test("abort while the application streams its response")
    func whileStreamingTheResponse() async throws {
        let app = ProbeApp()
        try await withServer(app: app) { addresses in
            let client = try await connect(addresses)
            let call = try await client.start(ClientRequest(target: "/drip"))
            try await Task.sleep(for: .milliseconds(200))
            try await Self.abortAndCheck(call, client: client, app: app)
            await client.close()
        }
    }

    /// The application answered without reading its body; END_REQUEST waits for the rest of the
    /// input, and the abort ends that wait.
    @Test("abort after the last FCGI_STDOUT, while END_REQUEST waits for the input")
    func afterTheLastStdout() async throws {
        let app = ProbeApp()
        try await withServer(app: app) { addresses in
            let client = try await connect(addresses)
            let (request, params) = Self.post("/id", contentLength: 100)
            let call = try await client.start(request, sendsStdin: false, params: params)
            try await client.writeRaw(Self.stream(.stdin, call.requestID, "0123456789"))
            try await Task.sleep(for: .milliseconds(200))
            try await Self.abortAndCheck(call, client: client, app: app, cancellations: 0)
            await client.close()
        }
    }

    @Test("abort during a FILTER's FCGI_DATA")
    func duringFilterData() async throws {
        let app = ProbeApp()
        try await withServer(app: app) { addresses in
            let client = try await connect(addresses)
            var request = ClientRequest(target: "/filter")
            request.extraVariables = [("FCGI_DATA_LENGTH", "1000"), ("FCGI_DATA_LAST_MOD", "0")]
            let call = try await client.start(request, role: .filter, sendsStdin: false)
            var input = Self.stream(.stdin, call.requestID, "", end: true)
            var data = Self.stream(.data, call.requestID, "some of the file")
            input.writeBuffer(&data)
            try await client.writeRaw(input)
            try await eventually { guard app.live.count > 0 else { throw TestFailure("not started") } }
            try await Task.sleep(for: .milliseconds(100))
            try await Self.abortAndCheck(call, client: client, app: app)
            await client.close()
        }
    }

    /// Three requests multiplexed on one kept connection: aborting one leaves the others whole.
    @Test("abort one of several multiplexed requests")
    func oneOfSeveral() async throws {
        let app = ProbeApp()
        try await withServer(app: app) { addresses in
            let client = try await connect(addresses)
            let (request, params) = Self.post("/read", contentLength: 20)
            let reading = try await client.start(request, sendsStdin: false, params: params)
            let dripping = try await client.start(ClientRequest(target: "/drip"))
            try await client.writeRaw(Self.stream(.stdin, reading.requestID, "0123456789"))
            try await Task.sleep(for: .milliseconds(100))
            dripping.abort()
            #expect(try await within(10) { try await dripping.result() }.protocolStatus == .requestComplete)
            try await client.writeRaw(Self.stream(.stdin, reading.requestID, "abcdefghij", end: true))
            let read = try await within(10) { try await reading.result() }
            #expect(String(buffer: try read.response().body) == "read 20\n")
            #expect(String(buffer: try await client.send(ClientRequest(target: "/id?third")).response().body) == "id=third\n")
            try await eventually { guard app.live.count == 0 else { throw TestFailure("\(app.live.count) still running") } }
            #expect(app.cancellations.count == 1)
            await client.close()
        }
    }
}
