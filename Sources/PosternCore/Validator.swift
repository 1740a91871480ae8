import Logging
import NIOCore
import Synchronization

/// A middleware that checks both sides of the contract at run time, as `wsgiref.validate` does
/// for WSGI (PEP 3333). A violation becomes a plain 500 for the client and its reason on the
/// environ's error stream; a violation found while a body streams ends the response with an error.
///
/// Environ side: `REQUEST_METHOD`, `SERVER_NAME`, `SERVER_PORT`, `SERVER_PROTOCOL` present;
/// `SCRIPT_NAME` empty or starting with `/` and never `/`; `PATH_INFO` empty or starting with
/// `/`; `CONTENT_LENGTH` digits; no `HTTP_CONTENT_TYPE`/`HTTP_CONTENT_LENGTH`/`HTTP_PROXY`;
/// `url_scheme` `http` or `https`.
///
/// Response side: three-digit status; header names are tokens and values free of control
/// characters; no `Status` header and no hop-by-hop header (`Connection`, `Transfer-Encoding`,
/// ...: the gateway owns framing); `Content-Type` present except for 1xx, 204 and 304; no body
/// with 1xx, 204 and 304; a `Content-Length` header equal to the bytes written; the request body
/// read at most once.
///
/// A violation is also logged in the gateway's own log (at `error`, with the request), when the
/// error stream goes elsewhere (FCGI_STDERR, a CGI program's stderr): the front-end's log is not
/// the only place to find it.
public struct Validator: Middleware {
    public let next: any Application
    let logger: Logger?

    public init(_ next: any Application, logger: Logger? = nil) {
        self.next = next
        self.logger = logger
    }

    public func respond(to environ: Environ) async throws -> Response {
        if let problem = Self.checkEnviron(environ) {
            return fail(environ, "environ: \(problem)")
        }
        let response: Response
        do {
            response = try await next.respond(to: environ)
        } catch let error as RequestBodyError where error == .alreadyConsumed {
            return fail(environ, "application: \(error)")
        }
        if let problem = Self.checkResponse(response) {
            return fail(environ, "response: \(problem)")
        }
        return guardBody(of: response, environ: environ)
    }

    private func fail(_ environ: Environ, _ problem: String) -> Response {
        report(environ, problem)
        return .error(.internalServerError)
    }

    private func report(_ environ: Environ, _ problem: String) {
        environ.errors.write("postern validator: \(problem)")
        if !environ.errors.isGatewayLog {
            logger?.error(
                "contract violation: \(problem)",
                metadata: [
                    "request": "\(environ["REQUEST_METHOD"] ?? "-") \(environ["REQUEST_URI"] ?? environ.scriptName + environ.pathInfo)",
                    "protocol": "\(environ.gatewayProtocol)",
                ])
        }
    }

    /// The first environ rule `environ` breaks, or `nil`.
    public static func checkEnviron(_ environ: Environ) -> String? {
        for name in ["REQUEST_METHOD", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL"] where environ.variables[name] == nil {
            return "required variable \(name) is missing"
        }
        let script = environ.scriptName
        if script == "/" { return "SCRIPT_NAME is \"/\" (it must be empty at the root)" }
        if !script.isEmpty && !script.hasPrefix("/") { return "SCRIPT_NAME \(String(reflecting: script)) does not start with /" }
        let path = environ.pathInfo
        if !path.isEmpty && !path.hasPrefix("/") { return "PATH_INFO \(String(reflecting: path)) does not start with /" }
        for name in ["HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "HTTP_PROXY"] where environ.variables[name] != nil {
            return "\(name) must not be present"
        }
        if let length = environ["CONTENT_LENGTH"], length.isEmpty || !length.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) {
            return "CONTENT_LENGTH \(String(reflecting: length)) is not a decimal number"
        }
        if environ.urlScheme != "http" && environ.urlScheme != "https" {
            return "url_scheme \(String(reflecting: environ.urlScheme)) is neither http nor https"
        }
        return nil
    }

    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers", "transfer-encoding", "upgrade",
    ]

    /// The first response rule `response` breaks before its body, or `nil`.
    public static func checkResponse(_ response: Response) -> String? {
        do {
            try HeaderSafety.check(response)
        } catch {
            return error.description
        }
        let code = response.status.code
        guard (100...599).contains(code) else { return "status \(code) is outside 100...599" }
        for field in response.headers {
            let lower = field.name.lowercased()
            if lower == "status" { return "the status goes in Response.status, not a Status header" }
            if hopByHop.contains(lower) { return "hop-by-hop header \(field.name) (the gateway owns framing)" }
        }
        let bodiless = (100..<200).contains(code) || code == 204 || code == 304
        if !bodiless && !response.headers.contains("Content-Type") { return "no Content-Type for status \(code)" }
        if bodiless, let length = response.body.knownLength, length > 0 { return "status \(code) must not have a body" }
        if let declared = response.headers["Content-Length"] {
            guard let value = Int(declared), value >= 0 else { return "Content-Length \(String(reflecting: declared)) is not a number" }
            if let known = response.body.knownLength, known != value {
                return "Content-Length \(value) but the body has \(known) bytes"
            }
        }
        return nil
    }

    /// Wraps a streamed body so that writing more (or fewer) bytes than Content-Length is caught.
    func guardBody(of response: Response, environ: Environ) -> Response {
        guard case .stream(let length, let write) = response.body.storage else { return response }
        let declared = response.headers["Content-Length"].flatMap(Int.init) ?? length
        let bodiless = (100..<200).contains(response.status.code) || response.status.code == 204 || response.status.code == 304
        var checked = response
        checked.body = .stream(length: length) { writer in
            let counting = CountingWriter(inner: writer)
            try await write(counting)
            let written = counting.count
            if bodiless, written > 0 {
                report(environ, "response: status \(response.status.code) must not have a body")
                throw ValidationError(message: "body on a bodiless status")
            }
            if let declared, written != declared {
                report(environ, "response: Content-Length \(declared) but the body wrote \(written) bytes")
                throw ValidationError(message: "body length differs from Content-Length")
            }
        }
        return checked
    }

    struct ValidationError: Error, CustomStringConvertible {
        let message: String
        var description: String { "validator: \(message)" }
    }

    final class CountingWriter: ResponseBodyWriter {
        let inner: any ResponseBodyWriter
        private let written = Atomic<Int>(0)

        init(inner: any ResponseBodyWriter) { self.inner = inner }

        var count: Int { written.load(ordering: .relaxed) }

        func write(_ buffer: ByteBuffer) async throws {
            written.add(buffer.readableBytes, ordering: .relaxed)
            try await inner.write(buffer)
        }
    }
}
