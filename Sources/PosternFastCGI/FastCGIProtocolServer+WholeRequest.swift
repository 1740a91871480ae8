import NIOCore
import PosternCore
import PosternEngine
import Synchronization

/// FastCGI on the engine's fast path: a RESPONDER or AUTHORIZER request without KEEP_CONN whose
/// records — BEGIN_REQUEST, PARAMS to its empty record, STDIN to its empty record — all came in
/// the first read: what nginx, lighttpd and mod_fcgid send by default (FastCGI 1.0 §3.3, §5.1).
///
/// The records go through the same ``FastCGIConnectionStateMachine`` as on a kept connection;
/// any action other than starting the request and feeding its STDIN (a management record, an
/// abort, a protocol error), a FILTER, KEEP_CONN, or a STDIN that disagrees with CONTENT_LENGTH
/// leaves the connection to the full engine.
extension FastCGIProtocolServer: OneRequestCodec {
    /// Front-ends close a FastCGI connection only when they give up on the request (§3.5).
    public var peerMayHalfClose: Bool { false }

    public func wholeRequest(in bytes: ByteBuffer, connection: ConnectionContext) -> WholeRequest? {
        let limits = configuration.limits
        var machine = FastCGIConnectionStateMachine(
            limits: .init(maxRequests: 1, maxConnections: limits.maxConnections, maxParamsBytes: limits.maxHeaderBytes, maxParamsRecords: limits.maxFastCGIParamsRecords))
        var decoder = FastCGIRecordDecoder()
        var buffer = bytes
        var started: (id: UInt16, begin: FastCGIBeginRequest, params: ByteBuffer)?
        var body = ByteBuffer()
        var complete = false
        while !complete {
            guard let record = try? decoder.decode(buffer: &buffer) else { return nil }
            if record.type == .beginRequest, let begin = try? FastCGIBeginRequest(parsing: record.content),
                begin.keepConnection || !(begin.role == .responder || begin.role == .authorizer)
            {
                return nil
            }
            switch machine.receive(record) {
            case .none:
                continue
            case .start(let id, let begin, let params, let inputComplete):
                started = (id, begin, params)
                complete = inputComplete
            case .stdin(let id, var bytes) where id == started?.id:
                body.writeBuffer(&bytes)
            case .endOfStream(let id, isData: false, inputComplete: true) where id == started?.id:
                complete = true
            default:
                return nil
            }
        }
        // Nothing may follow: the connection carries this one request.
        guard buffer.readableBytes == 0, let started else { return nil }
        guard let variables = try? FastCGIConnection.variables(begin: started.begin, params: started.params, limits: limits) else { return nil }
        if case .success(let result) = variables, (result.contentLength ?? 0) != body.readableBytes || body.readableBytes > limits.maxBodyBytes {
            return nil  // the full engine fails the body and says why
        }
        let framing = FastCGIOneRequestFraming(requestID: started.id)
        return WholeRequest(
            variables: variables,
            body: started.begin.role == .authorizer ? ByteBuffer() : body,
            errors: ErrorStream { message in framing.appendStderr(message) },
            framing: framing
        )
    }
}

/// The response of a one-request FastCGI connection: FCGI_STDERR (what the application wrote to
/// its error stream), FCGI_STDOUT with the CGI-style head and body, the empty records that end
/// both streams, and FCGI_END_REQUEST (§5.3, §5.5).
final class FastCGIOneRequestFraming: ResponseFraming {
    let requestID: UInt16
    private let stderr = Mutex<(pending: ByteBuffer, used: Bool)>((ByteBuffer(), false))

    init(requestID: UInt16) {
        self.requestID = requestID
    }

    func appendStderr(_ message: String) {
        stderr.withLock { state in
            state.pending.writeString(message)
            state.used = true
        }
    }

    func writeHead(_ response: Response, into buffer: inout ByteBuffer) throws(ResponseError) {
        var head = ByteBuffer()
        try response.encodeCGIHead(into: &head)
        writeBody(head, into: &buffer)
    }

    func writeBody(_ bytes: ByteBuffer, into buffer: inout ByteBuffer) {
        writePendingStderr(into: &buffer)
        guard bytes.readableBytes > 0 else { return }
        FastCGIRecordEncoder.writeStream(type: .stdout, requestID: requestID, content: bytes, into: &buffer)
    }

    func writeEnd(into buffer: inout ByteBuffer) {
        let used = writePendingStderr(into: &buffer)
        if used { FastCGIRecordEncoder.writeStreamEnd(type: .stderr, requestID: requestID, into: &buffer) }
        FastCGIRecordEncoder.writeStreamEnd(type: .stdout, requestID: requestID, into: &buffer)
        FastCGIRecordEncoder.writeEndRequest(requestID: requestID, appStatus: 0, protocolStatus: .requestComplete, into: &buffer)
    }

    func writeFailure(_ reason: String, into buffer: inout ByteBuffer) {
        FastCGIRecordEncoder.writeStream(type: .stderr, requestID: requestID, content: ByteBuffer(string: "postern: response body failed: \(reason)\n"), into: &buffer)
    }

    /// Head and body in one FCGI_STDOUT record when they fit (no intermediate copy of the body).
    func writeWhole(_ response: Response, body: ByteBuffer, into buffer: inout ByteBuffer) throws(ResponseError) {
        var head = ByteBuffer()
        try response.encodeCGIHead(into: &head)
        buffer.reserveCapacity(buffer.readableBytes + head.readableBytes + body.readableBytes + 64)
        writePendingStderr(into: &buffer)
        FastCGIResponseWriter.frameBytes(requestID: requestID, head: head, body: body, into: &buffer)
        writeEnd(into: &buffer)
    }

    /// Writes queued FCGI_STDERR; returns whether the stream was used at all.
    @discardableResult
    private func writePendingStderr(into buffer: inout ByteBuffer) -> Bool {
        let (pending, used) = stderr.withLock { state -> (ByteBuffer, Bool) in
            defer { state.pending.clear() }
            return (state.pending, state.used)
        }
        if pending.readableBytes > 0 {
            FastCGIRecordEncoder.writeStream(type: .stderr, requestID: requestID, content: pending, into: &buffer)
        }
        return used
    }
}
