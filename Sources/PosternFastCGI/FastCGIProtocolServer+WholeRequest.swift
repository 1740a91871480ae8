import NIOCore
import PosternCore
import PosternEngine

/// FastCGI on the engine's fast path: a RESPONDER or AUTHORIZER request without KEEP_CONN whose
/// records — BEGIN_REQUEST, PARAMS to its empty record, STDIN to its empty record — all came in
/// the first read: what nginx, lighttpd and mod_fcgid send by default (FastCGI 1.0 §3.3, §5.1).
///
/// The records go through the same ``FastCGIConnectionStateMachine`` as on a kept connection;
/// any action other than starting the request and feeding its STDIN (a management record, an
/// abort, a protocol error), a FILTER, KEEP_CONN, or a STDIN that disagrees with CONTENT_LENGTH
/// leaves the connection to the full engine.
extension FastCGIProtocolServer: WholeRequestCodec {
    /// Front-ends close a FastCGI connection only when they give up on the request (§3.5).
    public var peerMayHalfClose: Bool { false }

    public func wholeRequest(in bytes: ByteBuffer, connection: ConnectionContext) -> WholeRequest? {
        let limits = configuration.limits
        var machine = FastCGIConnectionStateMachine(
            limits: .init(
                maxRequests: 1, maxConnections: limits.maxConnections, maxParamsBytes: limits.maxHeaderBytes, maxParamsRecords: limits.maxFastCGIParamsRecords))
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
        let stderr = FastCGIStderrQueue()
        let framing = FastCGIResponseFraming(requestID: started.id, stderr: stderr, endsRequest: true)
        return WholeRequest(
            variables: variables,
            body: started.begin.role == .authorizer ? ByteBuffer() : body,
            errors: ErrorStream { message in stderr.append(message) },
            framing: framing
        )
    }
}
