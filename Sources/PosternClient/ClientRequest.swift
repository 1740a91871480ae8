import NIOCore
import PosternCore

/// A request as Postern's protocol clients send it (`postern request`, the tests, the benchmark):
/// the same CGI variables a front-end would build, so that every protocol carries the same request.
public struct ClientRequest: Sendable {
    public var method: String
    /// The script part of the path (what a front-end's location prefix maps to); usually empty.
    public var scriptName: String
    /// The decoded path after the script part.
    public var pathInfo: String
    /// The raw query string, without `?`.
    public var query: String
    public var headers: [(name: String, value: String)]
    public var body: ByteBuffer
    /// Extra CGI variables to send as they are (e.g. `FCGI_APACHE_ROLE`).
    public var extraVariables: [(name: String, value: String)]
    public var serverName: String
    public var serverPort: Int

    public init(
        method: String = "GET",
        scriptName: String = "",
        pathInfo: String = "/",
        query: String = "",
        headers: [(name: String, value: String)] = [],
        body: ByteBuffer = ByteBuffer(),
        extraVariables: [(name: String, value: String)] = [],
        serverName: String = "localhost",
        serverPort: Int = 80
    ) {
        self.method = method
        self.scriptName = scriptName
        self.pathInfo = pathInfo
        self.query = query
        self.headers = headers
        self.body = body
        self.extraVariables = extraVariables
        self.serverName = serverName
        self.serverPort = serverPort
    }

    /// `/path?query` split and percent-decoded into `pathInfo` and `query`.
    public init(method: String = "GET", target: String, headers: [(name: String, value: String)] = [], body: ByteBuffer = ByteBuffer()) {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = parts.first.map(String.init) ?? "/"
        self.init(
            method: method,
            pathInfo: ClientRequest.percentDecoded(path.isEmpty ? "/" : path),
            query: parts.count > 1 ? String(parts[1]) : "",
            headers: headers,
            body: body
        )
    }

    /// The CGI variables a front-end would send for this request (RFC 3875 §4.1), in a stable order.
    public func cgiVariables() -> [(name: String, value: String)] {
        var variables: [(name: String, value: String)] = [
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("SERVER_SOFTWARE", "postern-client"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("SERVER_NAME", serverName),
            ("SERVER_PORT", String(serverPort)),
            ("REQUEST_METHOD", method),
            ("SCRIPT_NAME", scriptName),
            ("PATH_INFO", pathInfo),
            ("QUERY_STRING", query),
            ("REQUEST_URI", scriptName + ClientRequest.percentEncodedPath(pathInfo) + (query.isEmpty ? "" : "?" + query)),
            ("REMOTE_ADDR", "127.0.0.1"),
            ("CONTENT_LENGTH", String(body.readableBytes)),
        ]
        for header in headers {
            if header.name.caseInsensitiveEquals("Content-Type") {
                variables.append(("CONTENT_TYPE", header.value))
            } else if header.name.caseInsensitiveEquals("Content-Length") {
                continue
            } else {
                variables.append((EnvironBuilder.cgiName(forHeader: header.name), header.value))
            }
        }
        variables.append(contentsOf: extraVariables)
        return variables
    }

    static func percentDecoded(_ text: String) -> String {
        var out: [UInt8] = []
        var bytes = Array(text.utf8)[...]
        while let byte = bytes.popFirst() {
            if byte == UInt8(ascii: "%"), bytes.count >= 2,
                let value = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16)
            {
                out.append(value)
                bytes = bytes.dropFirst(2)
            } else {
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `path` with every byte outside the unreserved set and `/` percent-encoded (RFC 3986 §2.3).
    public static func percentEncodedPath(_ path: String) -> String {
        var out = ""
        for byte in path.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "/"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }
}

/// A response as a protocol client received it.
public struct ClientResponse: Sendable {
    public var status: ResponseStatus
    public var headers: ResponseHeaders
    public var body: ByteBuffer
    /// FastCGI only: what the application wrote to FCGI_STDERR.
    public var errorOutput: String

    public init(status: ResponseStatus, headers: ResponseHeaders, body: ByteBuffer, errorOutput: String = "") {
        self.status = status
        self.headers = headers
        self.body = body
        self.errorOutput = errorOutput
    }

    /// The response as `curl -i` prints it: status line, fields, blank line, body.
    public func curlStyle() -> ByteBuffer {
        var out = ByteBuffer()
        out.writeString("HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n")
        for field in headers { out.writeString("\(field.name): \(field.value)\r\n") }
        out.writeString("\r\n")
        var body = self.body
        out.writeBuffer(&body)
        return out
    }
}
