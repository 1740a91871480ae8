import PosternCore

/// Why a listening socket could not be opened, taken over or served (the cause a
/// ``ListenerError`` names with its option and address).
public enum SocketError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A descriptor given as a listener (`fd:N`, a hand-over) is not a listening socket.
    case notListening(fd: Int32)
    /// getaddrinfo(3) could not resolve the host; its reason.
    case cannotResolve(reason: String)
    /// bind(2) failed; its reason.
    case cannotBind(reason: String)
    /// listen(2) failed; its reason.
    case cannotListen(reason: String)
    /// Another call on the socket failed: what was being done and errno.
    case failed(String, errno: Int32)
    /// The connection engine was given an event loop group it cannot accept on.
    case needsMultiThreadedEventLoopGroup

    public var description: String {
        switch self {
        case .notListening(let fd): "fd \(fd) is not a listening socket"
        case .cannotResolve(let reason): "cannot resolve the host: \(reason)"
        case .cannotBind(let reason): "cannot bind: \(reason)"
        case .cannotListen(let reason): "cannot listen: \(reason)"
        case .failed(let what, let errno): "\(what): \(systemErrorText(errno))"
        case .needsMultiThreadedEventLoopGroup: "the connection engine needs a MultiThreadedEventLoopGroup"
        }
    }
}
