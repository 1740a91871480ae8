import Logging
import NIOCore
import NIOPosix
import PosternCore
import PosternEngine
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The engine's fast path: one connection that carries one request, served on the thread that
/// accepted it (see ``ConnectionAcceptor``).
///
/// ```
///  recv ─► codec.wholeRequest ─► EnvironBuilder result ─► Environ ─► configuration.respond
///    (the protocol's one hook)                                        (on this thread: InlineTaskExecutor)
///  ─► framing.writeWhole ─► one send ─► close
/// ```
/// Whatever the fast path does not fully understand goes to the full engine with the bytes
/// already read (``ConnectionAcceptor/AcceptedConnection``): a request still arriving, KEEP_CONN, a
/// malformed request, a connection over `--max-connections`. An application that waits for
/// something outside its task goes on elsewhere, its connection watched for the peer going away
/// (``PeerWatch``), and its response is sent by the thread that finishes it; a streamed body, or
/// a socket that takes less than the whole response, continues on a SwiftNIO channel made from
/// the socket (``ResponseHandOver``): the accepting thread never waits on an application or a
/// client.
///
/// The application is called through ``GatewayConfiguration/respond(to:logger:)``, the same one
/// call every adapter makes, so the access log, metrics, `--timeout`, `--max-concurrency` and
/// the response header checks are the same on both paths.
struct WholeRequestCycle: Sendable {
    /// The first read's size: a request larger than this (a big upload) goes to the full engine.
    static let firstReadBytes = 64 * 1024
    /// How long to wait for a request when the connection is accepted before its bytes arrive
    /// (the front-end connects, then writes): long enough for a front-end, short enough that a
    /// client that sends nothing costs the accepting thread almost nothing before it goes to the
    /// full engine and its `--header-timeout`.
    static let firstBytesWaitMilliseconds: Int32 = 2

    let codec: any WholeRequestCodec
    let configuration: GatewayConfiguration
    let connections: ConnectionRegistry
    let allow: AllowList
    let group: MultiThreadedEventLoopGroup
    let open: OpenChannels
    let logger: Logger

    /// Serves `socket` or gives it, with the bytes read, to the full engine through `toFullEngine`.
    func serve(_ socket: CInt, peer: sockaddr_storage, scratch: UnsafeMutableRawBufferPointer, toFullEngine: (CInt, ByteBuffer) -> Void) {
        guard allow.admits(SocketAddress(storage: peer), logger: logger) else {
            close(socket)
            return
        }
        let count = Self.firstRead(socket, into: scratch)
        guard count > 0 else {
            if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                toFullEngine(socket, ByteBuffer())
            } else {
                close(socket)  // closed (or reset) before sending a request
            }
            return
        }
        let bytes = ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: scratch[0..<count]))
        guard count < scratch.count else {
            toFullEngine(socket, bytes)
            return
        }
        let context = ConnectionContext(remoteAddress: nil, localAddress: nil, configuration: configuration, logger: logger)
        guard let whole = codec.wholeRequest(in: bytes, connection: context),
            connections.addBusy(limit: configuration.limits.maxConnections)
        else {
            toFullEngine(socket, bytes)
            return
        }
        _ = context.beginRequest()  // a connection's first request is served even while draining
        respond(to: whole, socket: socket, context: context)
    }

    /// The connection's first bytes: what is there, or what arrives within
    /// ``firstBytesWaitMilliseconds``. A signal does not cut the wait short (`poll` and `recv`
    /// fail with `EINTR` whatever `SA_RESTART` says): a process that hosts CGI scripts, or takes
    /// a `SIGHUP`, would otherwise send connections to the full engine for no reason. Returns
    /// `recv`'s result; `-1` with `EAGAIN` when nothing came in time.
    static func firstRead(_ socket: CInt, into scratch: UnsafeMutableRawBufferPointer) -> Int {
        var deadline: Int64?  // set at the first EAGAIN: the common case never reads the clock
        while true {
            let count = recv(socket, scratch.baseAddress, scratch.count, 0)
            if count >= 0 { return count }
            switch errno {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                let end = deadline ?? monotonicNanoseconds() + Int64(firstBytesWaitMilliseconds) * 1_000_000
                deadline = end
                var ready = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
                var result: Int32
                repeat {
                    let left = end - monotonicNanoseconds()
                    guard left > 0 else {
                        errno = EAGAIN
                        return -1
                    }
                    result = poll(&ready, 1, Int32((left + 999_999) / 1_000_000))
                } while result < 0 && errno == EINTR
                guard result > 0 else {
                    if result == 0 { errno = EAGAIN }
                    return -1
                }
            default:
                return count
            }
        }
    }

    private static func monotonicNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    private func respond(to whole: WholeRequest, socket: CInt, context: ConnectionContext) {
        let connections = self.connections
        let done = ConnectionDone(socket: socket) {
            context.endRequest()
            connections.removeBusy()
        }
        let environ: Environ
        switch RequestBeginning.check(whole.variables, framedBodyLength: whole.body.readableBytes) {
        case .failure(let refusal):
            send(configuration.response(refusing: refusal, logger: logger), framing: whole.framing, done: done, task: nil)
            return
        case .success(let normalized):
            environ = Environ(
                normalized,
                gatewayProtocol: codec.gatewayProtocol,
                body: RequestBody(bytes: whole.body),
                errors: whole.errors ?? .logger(logger),
                flags: configuration.flags
            )
        }
        let outcome = WholeRequestOutcome()
        let executor = InlineTaskExecutor()
        let configuration = self.configuration
        let logger = self.logger
        let task = Task(executorPreference: executor) {
            let response = try? await configuration.respond(to: environ, logger: logger)
            await outcome.deliver(response)
        }
        let answered = executor.drive(until: { outcome.isDelivered })
        // Whatever the task (or a task it started with the same preference: a timer, a child
        // of `--timeout`) enqueues from now on runs on the event loops, not on a thread that
        // has gone back to accepting.
        executor.release()
        if answered, let delivered = outcome.take() {
            send(delivered, framing: whole.framing, done: done, task: task)
            return
        }
        // The application waits for something outside its task: it goes on elsewhere.
        let sendLater = waitForResponse(framing: whole.framing, done: done, task: task)
        if let delivered = outcome.sendWhenDelivered(sendLater) {
            Task { await sendLater(delivered) }
        }
    }

    /// What sends the response of an application that waits, once it comes. The connection is
    /// watched meanwhile (``PeerWatch``: a peer that goes away cancels the task) and counted as
    /// open (a graceful stop waits for it, a hard one cancels it); whichever thread finishes the
    /// task sends the response as the accepting thread would have (``send(_:framing:done:task:)``:
    /// a channel only when the socket takes less than all, or the body streams): no SwiftNIO
    /// channel (its registration, address lookups, socket options, pipeline) just to watch a
    /// wait. Where no watch can be made, a channel made now watches and answers instead.
    private func waitForResponse(framing: any ResponseFraming, done: ConnectionDone, task: Task<Void, Never>) -> @Sendable (Response?) async -> Void {
        let open = self.open
        guard let peers = PeerWatch.shared,
            let watch = peers.watch(done.socket, endMeansGone: !codec.peerMayHalfClose, { task.cancel() })
        else {
            let responseHandOver = makeResponseHandOver(done: done, framing: framing, task: task)
            return { response in await responseHandOver.send(response) }
        }
        let waiting = open.startWaiting(cancel: { task.cancel() })
        return { [self] response in
            watch.end()
            send(response, framing: framing, done: done, task: task)
            open.endWaiting(waiting)
        }
    }

    /// Writes a response the application has given (or `nil`: it was cancelled).
    private func send(_ response: Response?, framing: any ResponseFraming, done: ConnectionDone, task: Task<Void, Never>?) {
        guard let response else {
            done.closeNow()
            return
        }
        guard case .bytes(let body) = response.body.storage else {
            let responseHandOver = makeResponseHandOver(done: done, framing: framing, task: task)
            Task { await responseHandOver.send(response) }
            return
        }
        var out = ByteBuffer()
        framing.writeWholeOrRefuse(response, body: body, into: &out, logger: logger)
        switch done.sendNow(&out) {
        case .sent:
            done.closeNow()
        case .peerGone(let reason):
            logger.notice("the client went away mid-response", metadata: ["error": "\(reason)"])
            done.closeNow()
        case .wouldBlock:
            // The socket took part of it: a channel writes the rest as the peer reads.
            makeResponseHandOver(done: done, framing: framing, task: nil).sendEncoded(out)
        }
    }

    private func makeResponseHandOver(done: ConnectionDone, framing: any ResponseFraming, task: Task<Void, Never>?) -> ResponseHandOver {
        ResponseHandOver(
            socket: done.socket, group: group, open: open, framing: framing, peerMayHalfClose: codec.peerMayHalfClose, task: task,
            flushTimeout: .seconds(Int64(max(1, configuration.limits.idleTimeoutSeconds))), logger: logger, onClose: done.onClose)
    }
}

/// The end of a fast-path connection: close it, then the bookkeeping (end of request,
/// `--max-connections` slot).
struct ConnectionDone: Sendable {
    let socket: CInt
    let onClose: @Sendable () -> Void

    enum SendResult {
        case sent
        case wouldBlock
        case peerGone(String)
    }

    /// Sends what the socket takes now; `out` keeps the rest.
    func sendNow(_ out: inout ByteBuffer) -> SendResult {
        while out.readableBytes > 0 {
            let sent = out.withUnsafeReadableBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent > 0 {
                out.moveReaderIndex(forwardBy: sent)
                continue
            }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: return .peerGone(String(cString: strerror(errno)))
            }
        }
        return .sent
    }

    func closeNow() {
        close(socket)
        onClose()
    }
}

/// Where a fast-path request's response is: still with the application, delivered to the
/// accepting thread, or handed over to what sends it when it comes.
final class WholeRequestOutcome: Sendable {
    private enum State {
        case pending
        case delivered(Response?)
        case waiting(@Sendable (Response?) async -> Void)
        case taken
    }
    private let state = Mutex(State.pending)

    /// Called by the request's task with the application's response (`nil`: cancelled).
    func deliver(_ response: Response?) async {
        let target = state.withLock { state -> (@Sendable (Response?) async -> Void)? in
            switch state {
            case .pending:
                state = .delivered(response)
                return nil
            case .waiting(let send):
                state = .taken
                return send
            case .delivered, .taken:
                return nil
            }
        }
        await target?(response)
    }

    var isDelivered: Bool {
        state.withLock { if case .delivered = $0 { return true } else { return false } }
    }

    /// The delivered response, taken by the accepting thread.
    func take() -> Response?? {
        state.withLock { state in
            guard case .delivered(let response) = state else { return nil }
            state = .taken
            return .some(response)
        }
    }

    /// The accepting thread leaves: the response goes to `send` when it comes. Returns it
    /// if it came meanwhile (the caller sends it).
    func sendWhenDelivered(_ send: @escaping @Sendable (Response?) async -> Void) -> Response?? {
        state.withLock { state in
            if case .delivered(let response) = state {
                state = .taken
                return .some(response)
            }
            state = .waiting(send)
            return nil
        }
    }
}
