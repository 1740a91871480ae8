// Micro-benchmarks of Postern's per-request hot paths: throughput and allocations per request.
import Benchmark
import Logging
import NIOCore
import PosternCore
import PosternEngine
import PosternFastCGI
import PosternSCGI
import PosternUWSGI

/// The variables nginx sends with `include fastcgi_params` for `GET /fastcgi/hello` (17 of them).
let nginxVariables: [(name: String, value: String)] = [
    ("QUERY_STRING", ""), ("REQUEST_METHOD", "GET"), ("CONTENT_TYPE", ""), ("CONTENT_LENGTH", ""),
    ("SCRIPT_NAME", "/fastcgi/hello"), ("REQUEST_URI", "/fastcgi/hello"), ("DOCUMENT_URI", "/fastcgi/hello"),
    ("DOCUMENT_ROOT", "/tmp/postern-bench/htdocs"), ("SERVER_PROTOCOL", "HTTP/1.1"), ("REQUEST_SCHEME", "http"),
    ("GATEWAY_INTERFACE", "CGI/1.1"), ("SERVER_SOFTWARE", "nginx/1.22.1"), ("REMOTE_ADDR", "127.0.0.1"),
    ("REMOTE_PORT", "51234"), ("SERVER_ADDR", "127.0.0.1"), ("SERVER_PORT", "8080"), ("SERVER_NAME", ""),
    ("HTTP_HOST", "127.0.0.1:8080"),
]

/// BEGIN_REQUEST, PARAMS, the empty PARAMS and the empty STDIN: one whole nginx request.
let fastCGIRequest: ByteBuffer = {
    var params = ByteBuffer()
    for (name, value) in nginxVariables { FastCGINameValuePairs.write(name: name, value: value, into: &params) }
    var buffer = ByteBuffer()
    FastCGIRecordEncoder.writeBeginRequest(requestID: 1, role: .responder, keepConnection: true, into: &buffer)
    FastCGIRecordEncoder.writeStream(type: .params, requestID: 1, content: params, into: &buffer)
    FastCGIRecordEncoder.writeStreamEnd(type: .params, requestID: 1, into: &buffer)
    FastCGIRecordEncoder.writeStreamEnd(type: .stdin, requestID: 1, into: &buffer)
    return buffer
}()

let scgiRequest = try! SCGIRequestEncoder.encodeHead(variables: nginxVariables.filter { $0.name != "CONTENT_LENGTH" }, contentLength: 0)
let uwsgiRequest = try! UWSGIRequestEncoder.encodeHead(variables: nginxVariables.filter { $0.name != "CONTENT_LENGTH" }, contentLength: 0)
let helloResponse = Response(status: .ok, headers: ["Content-Type": "text/plain; charset=utf-8"], body: ResponseBody(string: "Hello, World!\n"))

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal, .instructions],
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 1_000
    )

    Benchmark("FastCGI records + params decode (nginx request)") { benchmark in
        for _ in benchmark.scaledIterations {
            var input = fastCGIRequest
            var decoder = FastCGIRecordDecoder()
            var pairs = 0
            while let record = try decoder.decode(buffer: &input) {
                if record.type == .params, record.content.readableBytes > 0 {
                    var values = FastCGINameValuePairDecoder(maxLength: 65536)
                    pairs += try values.decodeAll(record.content).count
                }
            }
            blackHole(pairs)
        }
    }

    Benchmark("Environ normalization (18 nginx variables)") { benchmark in
        for _ in benchmark.scaledIterations {
            var builder = EnvironBuilder(gatewayProtocol: .fastcgi)
            for (name, value) in nginxVariables { builder.addVariable(name: name, value: value) }
            blackHole(try (consume builder).finish())
        }
    }

    Benchmark("SCGI request to normalized variables (the fast path's decode + normalizer)") { benchmark in
        struct Hello: Application {
            func respond(to environ: Environ) async throws -> Response { helloResponse }
        }
        let logger = Logger(label: "bench")
        let server = SCGIProtocolServer(configuration: GatewayConfiguration(application: Hello(), logger: logger))
        let context = ConnectionContext(remoteAddress: nil, localAddress: nil, configuration: server.configuration, logger: logger)
        for _ in benchmark.scaledIterations {
            blackHole(server.wholeRequest(in: scgiRequest, connection: context))
        }
    }

    Benchmark("SCGI head decode") { benchmark in
        for _ in benchmark.scaledIterations {
            var input = scgiRequest
            var decoder = SCGIRequestDecoder()
            while let part = try decoder.decode(buffer: &input) { blackHole(part) }
        }
    }

    Benchmark("uwsgi head decode") { benchmark in
        for _ in benchmark.scaledIterations {
            var input = uwsgiRequest
            var decoder = UWSGIRequestDecoder()
            while let part = try decoder.decode(buffer: &input) { blackHole(part) }
        }
    }

    Benchmark("Response encode: CGI head + FCGI_STDOUT + END_REQUEST") { benchmark in
        let body = ByteBuffer(string: "Hello, World!\n")
        for _ in benchmark.scaledIterations {
            var head = ByteBuffer()
            try helloResponse.encodeCGIHead(into: &head)
            var out = ByteBuffer()
            FastCGIRecordEncoder.writeStream(type: .stdout, requestID: 1, content: head, into: &out)
            FastCGIRecordEncoder.writeStream(type: .stdout, requestID: 1, content: body, into: &out)
            FastCGIRecordEncoder.writeStreamEnd(type: .stdout, requestID: 1, into: &out)
            FastCGIRecordEncoder.writeEndRequest(requestID: 1, appStatus: 0, protocolStatus: .requestComplete, into: &out)
            blackHole(out)
        }
    }

    Benchmark("Response encode: HTTP/1.1 head (uwsgi)") { benchmark in
        for _ in benchmark.scaledIterations {
            var head = ByteBuffer()
            try helloResponse.encodeHTTPHead(into: &head)
            blackHole(head)
        }
    }
}
