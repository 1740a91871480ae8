// One soak request per protocol, built with Postern's encoders and checked byte for byte.
import Foundation
import NIOCore
import PosternCore
import PosternFastCGI
import PosternSCGI
import PosternUWSGI

/// A worker's client for one protocol: HTTP keeps its connection alive; SCGI, uwsgi and
/// FastCGI (without KEEP_CONN, as lighttpd and mod_fcgid send) use one connection per request.
final class SoakExchange {
    static let expectedBody = Array("Hello, World!\n".utf8)
    let gatewayProtocol: GatewayProtocol
    let port: Int
    let source: UInt8
    private var http: SoakSocket?
    private var pending: [UInt8] = []

    init(_ gatewayProtocol: GatewayProtocol, port: Int, source: UInt8) {
        self.gatewayProtocol = gatewayProtocol
        self.port = port
        self.source = source
    }

    static func variables(_ index: Int) -> [(name: String, value: String)] {
        [
            ("REQUEST_METHOD", "GET"), ("SCRIPT_NAME", ""), ("PATH_INFO", "/soak"), ("QUERY_STRING", "i=\(index)"),
            ("SERVER_NAME", "localhost"), ("SERVER_PORT", "80"), ("SERVER_PROTOCOL", "HTTP/1.1"), ("REMOTE_ADDR", "127.0.0.1"),
        ]
    }

    /// Runs request `index`; throws on any transport error or a wrong answer.
    func run(_ index: Int) throws {
        switch gatewayProtocol {
        case .http: try runHTTP(index)
        case .scgi: try check(try oneShot(Array(try SCGIRequestEncoder.encodeHead(variables: Self.variables(index), contentLength: 0).readableBytesView)))
        case .uwsgi: try check(try oneShot(Array(try UWSGIRequestEncoder.encodeHead(variables: Self.variables(index), contentLength: 0).readableBytesView)))
        case .fastcgi: try runFastCGI(index)
        case .cgi: throw SoakError("CGI is not soaked")
        }
    }

    private func oneShot(_ request: [UInt8]) throws -> [UInt8] {
        let socket = try SoakSocket(port: port, source: source)
        defer { socket.closeSocket() }
        try socket.send(request)
        return try socket.readToEnd()
    }

    /// A complete response whose status is 200 and whose body is Hello's.
    private func check(_ response: [UInt8]) throws {
        guard let split = response.firstRange(of: [13, 10, 13, 10]) else { throw SoakError("no response head: \(response.count) bytes") }
        let head = String(decoding: response[..<split.lowerBound], as: UTF8.self)
        guard head.hasPrefix("HTTP/1.1 200") || head.hasPrefix("Status: 200") else { throw SoakError("status: \(head.prefix(80))") }
        guard Array(response[split.upperBound...]) == Self.expectedBody else { throw SoakError("wrong body") }
    }

    private func runFastCGI(_ index: Int) throws {
        var out = ByteBuffer()
        FastCGIRecordEncoder.writeBeginRequest(requestID: 1, role: .responder, keepConnection: false, into: &out)
        var params = ByteBuffer()
        for (name, value) in Self.variables(index) { FastCGINameValuePairs.write(name: name, value: value, into: &params) }
        FastCGIRecordEncoder.writeStream(type: .params, requestID: 1, content: params, into: &out)
        FastCGIRecordEncoder.writeStreamEnd(type: .params, requestID: 1, into: &out)
        FastCGIRecordEncoder.writeStreamEnd(type: .stdin, requestID: 1, into: &out)
        let response = try oneShot(Array(out.readableBytesView))
        let processor = NIOSingleStepByteToMessageProcessor(FastCGIRecordDecoder())
        var stdout: [UInt8] = []
        var ended = false
        try processor.process(buffer: ByteBuffer(bytes: response)) { record in
            if record.type == .stdout { stdout += record.content.readableBytesView }
            if record.type == .endRequest { ended = true }
        }
        guard ended else { throw SoakError("no FCGI_END_REQUEST") }
        try check(stdout)
    }

    private func runHTTP(_ index: Int) throws {
        if http == nil { http = try SoakSocket(port: port, source: source) }
        let socket = http!
        do {
            try socket.send(Array("GET /soak?i=\(index) HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8))
            while true {
                if let split = pending.firstRange(of: [13, 10, 13, 10]) {
                    let head = String(decoding: pending[..<split.lowerBound], as: UTF8.self).lowercased()
                    let length =
                        head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                        .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? -1
                    if length >= 0, pending.count >= split.upperBound + length {
                        let end = split.upperBound + length
                        let response = Array(pending[..<end])
                        pending.removeFirst(end)
                        if head.contains("connection: close") { reset() }
                        try check(response)
                        return
                    }
                }
                guard try socket.receive(into: &pending) else { throw SoakError("HTTP connection closed mid-response") }
            }
        } catch {
            reset()
            throw error
        }
    }

    private func reset() {
        http?.closeSocket()
        http = nil
        pending = []
    }
}
