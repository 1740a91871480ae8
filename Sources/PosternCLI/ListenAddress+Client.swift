import NIOCore
import Postern

/// Where a protocol client connects: the socket address of a `HOST:PORT` or `unix:PATH` target.
extension ListenAddress {
    /// The address to connect to; `fd:N` names no peer and is refused.
    public func clientSocketAddress() throws -> SocketAddress {
        switch self {
        case .tcp(let host, let port):
            return try SocketAddress.makeAddressResolvingHost(host, port: port)
        case .unix(let path):
            return try SocketAddress(unixDomainSocketPath: path)
        case .fd(let fd):
            throw ClientError.notAnAddress(fd: fd)
        }
    }
}
