import NIOCore
import PosternCore

/// The demo applications, shared by `postern serve --app NAME` and the example executables.
public enum DemoApps {
    /// The apps by name, as `--app` takes them.
    public static let all: [String: any Application] = [
        "hello": Hello(),
        "environ": EnvironDump(),
        "echo": Echo(),
        "authorizer": Authorizer(),
        "demo": Demo(),
        "ops": OpsDemo(),
    ]
}

/// All the demos behind one listener, chosen by the request path's last segment: `…/hello`,
/// `…/echo`, `…/authorize`; anything else shows the environ. The path is SCRIPT_NAME + PATH_INFO,
/// so the routing works whichever way a front-end splits them.
public struct Demo: Application {
    public init() {}

    public func respond(to environ: Environ) async throws -> Response {
        let path = environ.scriptName + environ.pathInfo
        if path.hasSuffix("/hello") { return try await Hello().respond(to: environ) }
        if path.hasSuffix("/echo") { return try await Echo().respond(to: environ) }
        if path.hasSuffix("/authorize") { return try await Authorizer().respond(to: environ) }
        return try await EnvironDump().respond(to: environ)
    }
}

/// `200 text/plain` with `Hello, World!\n`: the smallest app, the one the benchmarks time.
public struct Hello: Application {
    static let body = ByteBuffer(string: "Hello, World!\n")

    public init() {}

    public func respond(to environ: Environ) async throws -> Response {
        Response(status: .ok, headers: ["Content-Type": "text/plain; charset=utf-8"], body: ResponseBody(Self.body))
    }
}

/// `200 application/json`: every string variable of the environ plus the `gateway.*` entries.
///
/// Values that are not UTF-8 appear with U+FFFD in place of bad bytes: the output is always
/// valid JSON.
public struct EnvironDump: Application {
    public init() {}

    public func respond(to environ: Environ) async throws -> Response {
        var entries: [(String, String)] = environ.variables.map { ($0.key, $0.value.string) }
        entries += environ.gatewayEntries.map { ($0.key, $0.value) }
        entries.sort { $0.0 < $1.0 }
        var json = "{\n"
        for (index, (key, value)) in entries.enumerated() {
            json += "  " + JSON.quote(key) + ": " + JSON.quote(value)
            json += index == entries.count - 1 ? "\n" : ",\n"
        }
        json += "}\n"
        return Response(status: .ok, headers: ["Content-Type": "application/json"], body: .init(string: json))
    }
}

/// `200`: the request body streamed back as it arrives, with the request's Content-Type.
public struct Echo: Application {
    public init() {}

    public func respond(to environ: Environ) async throws -> Response {
        let body = environ.body
        return Response(
            status: .ok,
            headers: ["Content-Type": environ.contentType ?? "application/octet-stream"],
            body: .stream(length: environ.contentLength) { writer in
                for try await chunk in body {
                    try await writer.write(chunk)
                }
            }
        )
    }
}

/// A FastCGI AUTHORIZER demo (FastCGI 1.0 §6.3): grants the request when it carries
/// `X-Postern-Token: let-me-in`, passing `REMOTE_USER=demo` on as a `Variable-` header; any other
/// request is denied with 403. As a responder it answers the same way, so it can be tried with curl.
public struct Authorizer: Application {
    public static let token = "let-me-in"

    public init() {}

    public func respond(to environ: Environ) async throws -> Response {
        guard environ["HTTP_X_POSTERN_TOKEN"] == Self.token else {
            return Response(status: .forbidden, headers: ["Content-Type": "text/plain; charset=utf-8"], body: .init(string: "denied by postern authorizer\n"))
        }
        return Response(
            status: .ok,
            headers: ["Content-Type": "text/plain; charset=utf-8", "Variable-REMOTE_USER": "demo", "Variable-POSTERN_AUTH": "granted"],
            body: .empty
        )
    }
}

/// Minimal JSON string quoting (RFC 8259 §7).
enum JSON {
    static func quote(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
