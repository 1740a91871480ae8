import NIOCore

/// The web-server side of a FastCGI connection in the pipeline: hands out request ids and
/// collects each request's FCGI_STDOUT, FCGI_STDERR and FCGI_END_REQUEST (FastCGI 1.0 §5.3, §5.5).
///
/// Lives on the channel's event loop; ``FastCGIClient`` reaches it through `NIOLoopBound`.
final class FastCGIClientHandler: ChannelInboundHandler {
    typealias InboundIn = FastCGIRecord

    struct Pending {
        var stdout = ByteBuffer()
        var stderr = ByteBuffer()
        let promise: EventLoopPromise<FastCGIClientResult>
    }

    private var pending: [UInt16: Pending] = [:]
    /// Waiting for the next management record (GET_VALUES_RESULT, UNKNOWN_TYPE), in order.
    private var managementWaiters: [EventLoopPromise<FastCGIRecord>] = []
    private var closedError: (any Error)?
    /// The next id tried; ids are reused once their END_REQUEST has arrived (§3.3).
    private var nextID: UInt16 = 1

    /// A free request id for a new request, or an error when the connection is closed or every
    /// id is busy.
    func register(_ promise: EventLoopPromise<FastCGIClientResult>) throws -> UInt16 {
        if let closedError { throw closedError }
        guard pending.count < Int(UInt16.max) else { throw FastCGIClientError.tooManyRequests }
        while pending[nextID] != nil || nextID == 0 { nextID &+= 1 }
        let id = nextID
        nextID &+= 1
        pending[id] = Pending(promise: promise)
        return id
    }

    func registerManagement(_ promise: EventLoopPromise<FastCGIRecord>) throws {
        if let closedError { throw closedError }
        managementWaiters.append(promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let record = unwrapInboundIn(data)
        if record.isManagement {
            if !managementWaiters.isEmpty { managementWaiters.removeFirst().succeed(record) }
            return
        }
        let id = record.requestID
        guard var entry = pending[id] else { return }
        switch record.type {
        case .stdout:
            var content = record.content
            entry.stdout.writeBuffer(&content)
            pending[id] = entry
        case .stderr:
            var content = record.content
            entry.stderr.writeBuffer(&content)
            pending[id] = entry
        case .endRequest:
            pending[id] = nil
            do {
                let end = try FastCGIEndRequest(parsing: record.content)
                entry.promise.succeed(
                    FastCGIClientResult(requestID: id, stdout: entry.stdout, stderr: entry.stderr, appStatus: end.appStatus, protocolStatus: end.protocolStatus)
                )
            } catch {
                entry.promise.fail(error)
                context.close(promise: nil)
            }
        default:
            failAll(FastCGIProtocolError.unexpectedType(record.type))
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(FastCGIClientError.connectionClosed)
        context.fireChannelInactive()
    }

    private func failAll(_ error: any Error) {
        if closedError == nil { closedError = error }
        let entries = pending
        pending = [:]
        for entry in entries.values { entry.promise.fail(error) }
        let waiters = managementWaiters
        managementWaiters = []
        for promise in waiters { promise.fail(error) }
    }
}

/// Why a FastCGI client request failed.
public enum FastCGIClientError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The server closed the connection before the request's END_REQUEST.
    case connectionClosed
    /// 65535 requests are already in flight on this connection.
    case tooManyRequests
    /// END_REQUEST carried a protocol status other than REQUEST_COMPLETE (§5.5).
    case rejected(FastCGIProtocolStatus)

    public var description: String {
        switch self {
        case .connectionClosed: return "the FastCGI server closed the connection before END_REQUEST"
        case .tooManyRequests: return "every FastCGI request id on this connection is in use"
        case .rejected(let status): return "the FastCGI server refused the request: \(status)"
        }
    }
}
