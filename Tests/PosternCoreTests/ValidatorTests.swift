import NIOCore
import PosternCore
import Synchronization
import Testing

/// Collects what an app writes to its error stream.
final class ErrorLog: Sendable {
    private let lines = Mutex<[String]>([])
    var stream: ErrorStream { ErrorStream { line in self.lines.withLock { $0.append(line) } } }
    var text: String { lines.withLock { $0.joined() } }
}

func validEnviron(_ errors: ErrorLog, body: RequestBody = .empty, extra: [String: EnvironValue] = [:]) -> Environ {
    var variables: [String: EnvironValue] = [
        "REQUEST_METHOD": "GET", "SERVER_NAME": "localhost", "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1", "SCRIPT_NAME": "", "PATH_INFO": "/", "QUERY_STRING": "",
    ]
    variables.merge(extra) { $1 }
    return Environ(variables: EnvironVariables(variables), body: body, errors: errors.stream, gatewayProtocol: .http)
}

final class CollectingWriter: ResponseBodyWriter {
    let bytes = Mutex<[UInt8]>([])
    func write(_ buffer: ByteBuffer) async throws { bytes.withLock { $0 += Array(buffer.readableBytesView) } }
}

@Suite("The validator middleware")
struct ValidatorTests {
    func run(_ respond: @escaping @Sendable (Environ) async throws -> Response, environ: (ErrorLog) -> Environ = { validEnviron($0) }) async throws -> (
        Response, String
    ) {
        let log = ErrorLog()
        let app = Validator(ApplicationFunction(respond))
        let response = try await app.respond(to: environ(log))
        return (response, log.text)
    }

    @Test("a correct exchange passes untouched")
    func passes() async throws {
        let (response, errors) = try await run { _ in .text("ok") }
        #expect(response.status.code == 200)
        #expect(errors.isEmpty)
    }

    @Test(
        "response violations become a 500 with the reason on the error stream",
        arguments: [
            (Response(status: .ok, headers: [:], body: .init(string: "x")), "no Content-Type"),
            (Response(status: .ok, headers: ["Content-Type": "text/plain", "X-Bad": "a\r\nSet-Cookie: evil=1"], body: .empty), "control character"),
            (Response(status: .ok, headers: ["Content-Type": "text/plain", "Bad Name": "x"], body: .empty), "not an RFC 9110 token"),
            (Response(status: ResponseStatus(code: 42), headers: ["Content-Type": "text/plain"], body: .empty), "three-digit"),
            (Response(status: .noContent, headers: [:], body: .init(string: "x")), "must not have a body"),
            (
                Response(status: .ok, headers: ["Content-Type": "text/plain", "Content-Length": "3"], body: .init(string: "x")),
                "Content-Length 3 but the body has 1"
            ),
            (Response(status: .ok, headers: ["Content-Type": "text/plain", "Transfer-Encoding": "chunked"], body: .empty), "hop-by-hop"),
            (Response(status: .ok, headers: ["Content-Type": "text/plain", "Status": "200"], body: .empty), "Status header"),
        ])
    func responseViolations(response: Response, reason: String) async throws {
        let (answer, errors) = try await run { _ in response }
        #expect(answer.status.code == 500)
        #expect(errors.contains(reason), "\(errors)")
    }

    @Test("204 and 304 need no Content-Type")
    func bodiless() async throws {
        let (response, errors) = try await run { _ in Response(status: .noContent) }
        #expect(response.status.code == 204)
        #expect(errors.isEmpty)
    }

    @Test(
        "environ violations are caught before the app runs",
        arguments: [
            (["SCRIPT_NAME": "/"], "SCRIPT_NAME is \"/\""),
            (["PATH_INFO": "relative"], "PATH_INFO"),
            (["HTTP_PROXY": "x"], "HTTP_PROXY"),
            (["CONTENT_LENGTH": "abc"], "CONTENT_LENGTH"),
        ] as [([String: EnvironValue], String)])
    func environViolations(extra: [String: EnvironValue], reason: String) async throws {
        let ran = Atomic<Bool>(false)
        let (response, errors) = try await run(
            { _ in
                ran.store(true, ordering: .relaxed)
                return .text("ok")
            }, environ: { validEnviron($0, extra: extra) })
        #expect(response.status.code == 500)
        #expect(errors.contains(reason), "\(errors)")
        let didRun = ran.load(ordering: .relaxed)
        #expect(!didRun)
    }

    @Test("a missing required variable is reported by name")
    func missingVariable() async throws {
        let (response, errors) = try await run(
            { _ in .text("ok") },
            environ: { log in
                var environ = validEnviron(log)
                environ.variables["SERVER_NAME"] = nil
                return environ
            })
        #expect(response.status.code == 500)
        #expect(errors.contains("SERVER_NAME"))
    }

    @Test("reading the body twice is a violation")
    func bodyTwice() async throws {
        let (response, errors) = try await run(
            { environ in
                _ = try await environ.body.collect(upTo: 10)
                _ = try await environ.body.collect(upTo: 10)
                return .text("ok")
            }, environ: { validEnviron($0, body: RequestBody(bytes: ByteBuffer(string: "x"))) })
        #expect(response.status.code == 500)
        #expect(errors.contains("read twice"))
    }

    @Test("a streamed body that writes more than its Content-Length fails while streaming")
    func streamLength() async throws {
        let (response, _) = try await run { _ in
            Response(
                status: .ok, headers: ["Content-Type": "text/plain", "Content-Length": "2"],
                body: .stream { writer in
                    try await writer.write("abc")
                })
        }
        #expect(response.status.code == 200)
        await #expect(throws: (any Error).self) { try await response.body.write(to: CollectingWriter()) }
    }
}

@Suite("Middleware")
struct MiddlewareTests {
    struct Tag: Middleware {
        let next: any Application
        let name: String
        func respond(to environ: Environ) async throws -> Response {
            var response = try await next.respond(to: environ)
            response.headers.add(name: "X-Trace", value: name)
            return response
        }
    }

    @Test("middlewares compose: the first is innermost, the last sees the request first")
    func order() async throws {
        let app = ApplicationFunction { _ in .text("ok") }.wrapped(in: [
            { Tag(next: $0, name: "inner") },
            { Tag(next: $0, name: "outer") },
        ])
        let response = try await app.respond(to: validEnviron(ErrorLog()))
        #expect(response.headers.values(for: "X-Trace") == ["inner", "outer"])
    }

    @Test("a closure middleware can short-circuit")
    func shortCircuit() async throws {
        let app = ApplicationFunction { _ in .text("app") }.wrapped { next in
            MiddlewareFunction(wrapping: next) { environ, next in
                environ.pathInfo == "/blocked" ? .error(.forbidden) : try await next.respond(to: environ)
            }
        }
        let log = ErrorLog()
        var environ = validEnviron(log)
        environ.variables["PATH_INFO"] = "/blocked"
        #expect(try await app.respond(to: environ).status.code == 403)
        #expect(try await app.respond(to: validEnviron(log)).status.code == 200)
    }
}
