import Logging
import NIOCore
import PosternCore
import PosternEngine
import Synchronization

/// One FastCGI connection's part that its request tasks share with ``FastCGIRequestHandler``
/// (FastCGI 1.0 §3.3, §5): the state machine, each running request's handle, and the channel
/// the tasks write to.
///
/// Every write is whole records, so concurrent requests never interleave inside a record; the
/// channel keeps the writes of one task in order, and a close a task asks for after its writes
/// comes after them.
struct FastCGIConnection: Sendable {
    let context: ConnectionContext
    let channel: any Channel
    let shared: Shared

    /// State the handler (on the event loop) and the request tasks share.
    final class Shared: Sendable {
        let machine: Mutex<FastCGIConnectionStateMachine>
        let handles = Mutex<[UInt16: FastCGIRequestHandle]>([:])
        /// The request tasks still running, and whether the connection's input has ended (its
        /// end, ABORT of the connection, malformed records): the connection closes once both
        /// hold, after what the last task wrote.
        let life = Mutex<(running: Int, inputEnded: Bool)>((0, false))

        init(machine: FastCGIConnectionStateMachine) {
            self.machine = Mutex(machine)
        }
    }

    init(context: ConnectionContext, channel: any Channel) {
        self.context = context
        self.channel = channel
        let limits = context.configuration.limits
        self.shared = Shared(
            machine: FastCGIConnectionStateMachine(
                limits: .init(
                    maxRequests: limits.maxRequestsPerConnection,
                    maxConnections: limits.maxConnections,
                    maxParamsBytes: limits.maxHeaderBytes,
                    maxParamsRecords: limits.maxFastCGIParamsRecords
                )
            )
        )
    }

    var logger: Logger { context.logger }

    /// PARAMS ended: builds the environ and registers the request's handle; returns what its
    /// task runs.
    ///
    /// - Throws: ``FastCGIProtocolError`` when the PARAMS pairs are malformed.
    func start(id: UInt16, begin: FastCGIBeginRequest, params: ByteBuffer, inputComplete: Bool) throws -> FastCGIRequestRunner.Start {
        let configuration = context.configuration
        let normalized = try Self.variables(begin: begin, params: params, limits: configuration.limits)
        let contentLength = (try? normalized.get())?.contentLength
        let hasBody = begin.role != .authorizer
        let (body, bodySource): (RequestBody, RequestBodySource?) = {
            guard hasBody else { return (.empty, nil) }
            let stream = RequestBody.makeStream(expectedLength: contentLength, highWatermark: configuration.limits.bodyBufferBytes)
            return (stream.body, stream.source)
        }()
        var filterData: RequestBody?
        var dataSource: RequestBodySource?
        if begin.role == .filter {
            let declared = (try? normalized.get())?.variables["FCGI_DATA_LENGTH"]?.string
            let stream = RequestBody.makeStream(expectedLength: declared.flatMap { Int($0) }, highWatermark: configuration.limits.bodyBufferBytes)
            filterData = stream.body
            dataSource = stream.source
        }
        let handle = FastCGIRequestHandle(requestID: id, keepConnection: begin.keepConnection, body: bodySource, data: dataSource, inputComplete: inputComplete)
        if let contentLength, contentLength > configuration.limits.maxBodyBytes {
            bodySource?.fail(RequestBodyError.tooLarge(limit: configuration.limits.maxBodyBytes))
        }
        shared.handles.withLock { $0[id] = handle }

        var requestLogger = logger
        requestLogger[metadataKey: "request"] = "\(id)"
        let connectionEntries = context.transportSecurity?.connectionEntries ?? [:]
        let request = RequestBeginning.check(normalized).map { result in
            Environ(
                result,
                gatewayProtocol: .fastcgi,
                body: body,
                errors: ErrorStream { [stderr = handle.stderr] message in stderr.append(message) },
                flags: configuration.flags,
                filterData: filterData,
                connectionEntries: connectionEntries
            )
        }
        let accepted = context.beginRequest()
        return FastCGIRequestRunner.Start(
            runner: FastCGIRequestRunner(connection: self, handle: handle, logger: requestLogger), request: request, refused: !accepted)
    }

    /// The PARAMS stream (name-value pairs, §3.4) through the normalizer, with `FCGI_ROLE`.
    ///
    /// - Throws: ``FastCGIProtocolError`` when the pairs are malformed (the connection closes);
    ///   a rule of the normalizer broken is the result's failure (the request is answered 400).
    static func variables(begin: FastCGIBeginRequest, params: ByteBuffer, limits: GatewayLimits) throws -> Result<EnvironBuilder.Result, NormalizationError> {
        var builder = EnvironBuilder(gatewayProtocol: .fastcgi, maxBytes: limits.maxHeaderBytes)
        try FastCGINameValuePairDecoder(maxLength: limits.maxHeaderBytes).forEachPair(in: params) { name, value in
            builder.addVariable(name: name, value: value)
        }
        builder.setComputed("FCGI_ROLE", EnvironValue(begin.role.description))
        do {
            return .success(try (consume builder).finish())
        } catch {
            return .failure(error)
        }
    }

    // MARK: Life

    /// A request task starts.
    func taskStarted() {
        shared.life.withLock { $0.running += 1 }
    }

    /// A request task has written all it will write: closes the connection if its input has
    /// ended and no other task runs.
    func taskEnded() {
        let close = shared.life.withLock { life in
            life.running -= 1
            return life.running == 0 && life.inputEnded
        }
        if close { channel.close(promise: nil) }
    }

    /// The connection's input has ended: closes it now if no task runs, else after the last.
    func inputEnded() {
        let close = shared.life.withLock { life in
            life.inputEnded = true
            return life.running == 0
        }
        if close { channel.close(promise: nil) }
    }

    // MARK: Used by request tasks

    /// The request is over: free its id before END_REQUEST can reach the peer (a front-end
    /// reuses id 1 at once).
    func finish(_ id: UInt16) {
        shared.machine.withLock { $0.requestFinished(id) }
        shared.handles.withLock { $0[id] = nil }
    }

    /// Writes whole records, without waiting for them to reach the socket: what a task writes
    /// last (its response in hand and END_REQUEST), so the task is done at once.
    func write(_ bytes: ByteBuffer) {
        channel.writeAndFlush(bytes, promise: nil)
    }

    /// Writes the last bytes of a connection that closes (no KEEP_CONN, or draining) and closes
    /// it once they have reached the socket. Does not wait: the request task is done.
    func writeAndClose(_ bytes: ByteBuffer) {
        let channel = self.channel
        channel.writeAndFlush(bytes).whenComplete { _ in
            channel.close(promise: nil)
        }
    }
}
