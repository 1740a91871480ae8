import NIOCore
import NIOPosix

extension ClientBootstrap {
    /// A bootstrap for a socket already accepted (``ConnectionAcceptor``), whose initializer sets
    /// what the connection needs synchronously (`TCP_NODELAY` on TCP; half-closure is off by
    /// default): no option goes through the bootstrap, which applies each one as a chain of
    /// futures for every channel it makes. `ClientBootstrap` carries `TCP_NODELAY` from its
    /// start, and `enableMPTCP(true)` is the one public way to drop it; MPTCP itself only
    /// changes the sockets a bootstrap creates, never one it is given (`withConnectedSocket`).
    static func forAcceptedSocket(group: any EventLoopGroup) -> ClientBootstrap {
        ClientBootstrap(group: group).enableMPTCP(true)
    }
}
