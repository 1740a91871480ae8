// Request bytes for every protocol, built with the project's own encoders, for hostile clients
// and the engine's fast-path tests.
import NIOCore
import PosternCore
import PosternFastCGI
import PosternRuntime
import PosternSCGI
import PosternUWSGI

public enum RequestBytes {
    /// A request head for `path` declaring `contentLength` body bytes (none of which are included).
    public static func head(_ listenerProtocol: ListenerProtocol, path: String, contentLength: Int, keepConnection: Bool = false) -> [UInt8] {
        let variables: [(name: String, value: String)] = [
            ("REQUEST_METHOD", contentLength > 0 ? "POST" : "GET"), ("SCRIPT_NAME", ""), ("PATH_INFO", path),
            ("QUERY_STRING", ""), ("SERVER_NAME", "localhost"), ("SERVER_PORT", "80"), ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("REQUEST_URI", path), ("CONTENT_LENGTH", String(contentLength)),
        ]
        // The bytes inside the TLS session, for a TLS listener.
        switch listenerProtocol.plain {
        case .http, .https:
            return Array("\(contentLength > 0 ? "POST" : "GET") \(path) HTTP/1.1\r\nHost: x\r\nContent-Length: \(contentLength)\r\n\r\n".utf8)
        case .scgi:
            return Array(try! SCGIRequestEncoder.encodeHead(variables: variables, contentLength: contentLength).readableBytesView)
        case .uwsgi, .suwsgi:
            return Array(try! UWSGIRequestEncoder.encodeHead(variables: variables, contentLength: contentLength).readableBytesView)
        case .fastcgi, .fastcgiTLS:
            var out = ByteBuffer()
            FastCGIRecordEncoder.writeBeginRequest(requestID: 1, role: .responder, keepConnection: keepConnection, into: &out)
            var params = ByteBuffer()
            for (name, value) in variables { FastCGINameValuePairs.write(name: name, value: value, into: &params) }
            FastCGIRecordEncoder.writeStream(type: .params, requestID: 1, content: params, into: &out)
            FastCGIRecordEncoder.writeStreamEnd(type: .params, requestID: 1, into: &out)
            return Array(out.readableBytesView)
        }
    }

    /// A whole bodiless request after which the server closes the connection (HTTP: with
    /// `Connection: close`; FastCGI: without FCGI_KEEP_CONN).
    public static func request(_ listenerProtocol: ListenerProtocol, path: String) -> [UInt8] {
        if listenerProtocol == .http { return Array("GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8) }
        return head(listenerProtocol, path: path, contentLength: 0) + body(listenerProtocol, [], end: true)
    }

    /// Body bytes as the protocol frames them (FastCGI: STDIN records; others: raw).
    public static func body(_ listenerProtocol: ListenerProtocol, _ bytes: [UInt8], end: Bool) -> [UInt8] {
        guard listenerProtocol == .fastcgi else { return bytes }
        var out = ByteBuffer()
        if !bytes.isEmpty { FastCGIRecordEncoder.writeStream(type: .stdin, requestID: 1, content: ByteBuffer(bytes: bytes), into: &out) }
        if end { FastCGIRecordEncoder.writeStreamEnd(type: .stdin, requestID: 1, into: &out) }
        return Array(out.readableBytesView)
    }

    /// A fragment that leaves the server waiting for the rest of a head.
    public static func partialHead(_ listenerProtocol: ListenerProtocol) -> [UInt8] {
        let whole = head(listenerProtocol, path: "/", contentLength: 0)
        return Array(whole.prefix(whole.count / 2))
    }

    /// The STDOUT content of a FastCGI response (headers and body), nil if it never ended.
    public static func fastCGIStdout(_ bytes: [UInt8]) -> [UInt8]? {
        let processor = NIOSingleStepByteToMessageProcessor(FastCGIRecordDecoder())
        var stdout: [UInt8] = []
        var ended = false
        try? processor.process(buffer: ByteBuffer(bytes: bytes)) { record in
            if record.type == .stdout { stdout += record.content.readableBytesView }
            if record.type == .endRequest { ended = true }
        }
        return ended ? stdout : nil
    }

    public static let allProtocols: [ListenerProtocol] = [.http, .fastcgi, .scgi, .uwsgi]
}
