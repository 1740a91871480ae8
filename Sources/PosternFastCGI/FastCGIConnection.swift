import Logging
import NIOCore
import PosternCore
import PosternEngine
import Synchronization

/// One FastCGI connection: reads records, runs the state machine, starts a task per request and
/// feeds its streams (FastCGI 1.0 §3.3, §5).
///
/// The read loop owns the inbound stream; request tasks share the outbound writer (each write is
/// whole records, so concurrent requests never interleave inside a record). Feeding a body
/// suspends while its application has `bodyBufferBytes` unread, and so does reading the
/// socket: FastCGI has no per-request flow control, so a slow reader slows its connection.
struct FastCGIConnection: Sendable {
    let context: ConnectionContext
    let channel: any Channel
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    let shared: Shared

    /// State the read loop and the request tasks share.
    final class Shared: Sendable {
        let machine: Mutex<FastCGIConnectionStateMachine>
        let handles = Mutex<[UInt16: FastCGIRequestHandle]>([:])

        init(machine: FastCGIConnectionStateMachine) {
            self.machine = Mutex(machine)
        }
    }

    init(context: ConnectionContext, channel: any Channel, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.context = context
        self.channel = channel
        self.outbound = outbound
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

    func run(_ inbound: NIOAsyncChannelInboundStream<FastCGIRecord>) async {
        await withDiscardingTaskGroup { group in
            do {
                for try await record in inbound {
                    let action = shared.machine.withLock { $0.receive(record) }
                    guard try await perform(action, group: &group) else { break }
                }
            } catch let error as FastCGIProtocolError {
                logger.notice("closing the connection: malformed FastCGI input", metadata: ["reason": "\(error)"])
            } catch {
                logger.debug("connection read ended", metadata: ["error": "\(error)"])
            }
            // The connection is done reading: whatever still runs is cut off from its input.
            let open = shared.handles.withLock { Array($0.values) }
            for handle in open {
                if !handle.isInputComplete {
                    handle.body?.fail(RequestBodyError.disconnected)
                    handle.data?.fail(RequestBodyError.disconnected)
                    handle.abort()
                }
                handle.markInputComplete()
            }
        }
    }

    /// Performs one action; `false` to stop reading.
    private func perform(_ action: FastCGIConnectionStateMachine.Action, group: inout DiscardingTaskGroup) async throws -> Bool {
        switch action {
        case .none:
            return true
        case .send(let bytes), .abortedBeforeStart(let bytes):
            try await outbound.write(bytes)
            return true
        case .start(let id, let begin, let params, let inputComplete):
            try start(id: id, begin: begin, params: params, inputComplete: inputComplete, group: &group)
            return true
        case .stdin(let id, let bytes), .data(let id, let bytes):
            let isData: Bool
            if case .data = action { isData = true } else { isData = false }
            guard let handle = shared.handles.withLock({ $0[id] }), let source = isData ? handle.data : handle.body else { return true }
            let limit = context.configuration.limits.maxBodyBytes
            if source.receivedBytes + bytes.readableBytes > limit {
                logger.notice("request body over --max-body-bytes", metadata: ["request": "\(id)", "limit": "\(limit)"])
                source.fail(RequestBodyError.tooLarge(limit: limit))
                return true
            }
            if await source.yield(bytes) == .lengthExceeded {
                logger.notice("FCGI_STDIN runs past CONTENT_LENGTH; the request fails", metadata: ["request": "\(id)"])
            }
            return true
        case .endOfStream(let id, let isData, let inputComplete):
            guard let handle = shared.handles.withLock({ $0[id] }) else { return true }
            if let source = isData ? handle.data : handle.body, let mismatch = source.finish() {
                logger.notice("request stream ended badly", metadata: ["request": "\(id)", "reason": "\(mismatch)"])
            }
            if inputComplete { handle.markInputComplete() }
            return true
        case .abort(let id):
            shared.handles.withLock { $0[id] }?.abort()
            return true
        case .close(let error):
            throw error
        }
    }

    /// PARAMS ended: build the environ and start the request's task.
    private func start(id: UInt16, begin: FastCGIBeginRequest, params: ByteBuffer, inputComplete: Bool, group: inout DiscardingTaskGroup) throws {
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
        let runner = FastCGIRequestRunner(connection: self, handle: handle, logger: requestLogger)
        group.addTask {
            await runner.run(request, refused: !accepted)
        }
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

    // MARK: Used by request tasks

    /// The request is over: free its id before END_REQUEST can reach the peer (a front-end
    /// reuses id 1 at once).
    func finish(_ id: UInt16) {
        shared.machine.withLock { $0.requestFinished(id) }
        shared.handles.withLock { $0[id] = nil }
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
