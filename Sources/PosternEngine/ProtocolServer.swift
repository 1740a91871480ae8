import NIOCore
import PosternCore

/// A wire protocol's server side, as the runtime drives it, in the shape of Hummingbird 2's
/// `ServerChildChannel`: `setup` adds the protocol's handlers to a new connection's channel (on
/// its event loop), then `handle` serves it in a task of its own until it closes. Each protocol
/// module provides one (``CloseDelimitedProtocolServer`` for SCGI and uwsgi, FastCGI's and
/// HTTP's); the runtime knows no protocol but through this, and a wrapper (a TLS listener) is one
/// more conformance that adds its handler and delegates.
///
/// A protocol whose pipeline serves each connection alone (SCGI and uwsgi, one request per
/// connection; HTTP, requests one after another, and FastCGI, multiplexed: each request in a
/// task of its own) sets up a `Void` connection and gets no task for it: its connections cost
/// what the protocol needs and no more (``servesInPipeline``).
public protocol ProtocolServer: BusyRefusal {
    /// What `setup` makes of a connection and `handle` serves (an `NIOAsyncChannel`, say);
    /// nothing for a protocol served in the pipeline, as all of Postern's are.
    associatedtype Connection: Sendable

    var gatewayProtocol: GatewayProtocol { get }

    /// The engine's fast path for this protocol (``WholeRequestCodec``): a connection whose
    /// first read holds a whole request is answered on the accepting thread. `nil` where there
    /// is none (HTTP, whose common case is keep-alive).
    var fastPath: (any WholeRequestCodec)? { get }

    /// Whether the channel pipeline serves the connection alone, with no task and no `handle`.
    static var servesInPipeline: Bool { get }

    /// Adds the protocol's handlers to a new connection; called on its event loop.
    func setup(_ channel: any Channel, context: ConnectionContext) throws -> Connection

    /// Serves one connection until it closes. Errors are the connection's own: log and return.
    func handle(_ connection: Connection, context: ConnectionContext) async
}

extension ProtocolServer {
    public static var servesInPipeline: Bool { false }
    public var fastPath: (any WholeRequestCodec)? { nil }
}

extension ProtocolServer where Connection == Void {
    public static var servesInPipeline: Bool { true }
    public func handle(_ connection: Void, context: ConnectionContext) async {}
}
