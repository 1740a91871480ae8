#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A listening socket the master opens itself with plain `socket`/`bind`/`listen`, so that it can
/// hand the descriptor to every worker it starts (inherited across `posix_spawn`: the descriptor
/// is left without FD_CLOEXEC). The master keeps it open for its whole life: while workers come
/// and go (reload, recycling, a crash) connections wait in the kernel's backlog instead of being
/// refused.
package enum ListeningSocket {
    /// Opens (or, for `fd:N`, checks) the listener and returns its descriptor.
    /// The accept queue's length when none is given (`--backlog`); the kernel caps it at
    /// `net.core.somaxconn`.
    package static let defaultBacklog: Int32 = 1024

    package static func open(_ spec: ListenerSpec, backlog: Int32 = defaultBacklog) throws(ListenerError) -> Int32 {
        do {
            return try openUnchecked(spec, backlog: backlog)
        } catch {
            throw spec.failure(error)
        }
    }

    private static func openUnchecked(_ spec: ListenerSpec, backlog: Int32) throws -> Int32 {
        let fd: Int32
        switch spec.address {
        case .fd(let given):
            guard isListeningSocket(given) else { throw SocketError.notListening(fd: given) }
            fd = given
        case .tcp(let host, let port):
            fd = try openTCP(host: host, port: port, backlog: backlog)
        case .unix(let path):
            try UnixSocketFile.prepare(path: path)
            fd = try UnixSocketFile.bindingPrivately { try openUnix(path: path, backlog: backlog) }
            try UnixSocketFile.setMode(path: path, mode: spec.socketMode)
        }
        _ = fcntl(fd, F_SETFD, 0)  // inherited by the workers
        return fd
    }

    /// TCP_DEFER_ACCEPT (tcp(7)) on a TCP listener of the engine: the kernel hands a connection
    /// to `accept` only once its first bytes have arrived, so the fast path's first `recv` finds
    /// the request there instead of waiting for it in `poll` (a sleep and a wake-up for every
    /// connection of nginx, which connects before it writes).
    /// A client that connects and sends nothing is accepted after about a second and meets
    /// `--header-timeout` as before. Nothing for unix sockets (the option is TCP's); an error is
    /// ignored: the fast path still waits for a late request.
    package static func deferAccept(_ fd: Int32) {
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let family = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) == 0 ? Int32($0.pointee.sa_family) : -1 }
        }
        guard family == AF_INET || family == AF_INET6 else { return }
        var seconds: Int32 = 1
        // 9: TCP_DEFER_ACCEPT (not in Glibc's module map).
        _ = setsockopt(fd, Int32(IPPROTO_TCP), 9, &seconds, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Resolves a TCP listener's host as opening it would, and binds nothing: `--check-config`
    /// names a host that a start could not resolve. Other addresses pass.
    package static func resolve(_ spec: ListenerSpec) throws(ListenerError) {
        guard case .tcp(let host, let port) = spec.address else { return }
        do {
            freeaddrinfo(try addressInfo(host: host, port: port))
        } catch {
            throw spec.failure(error)
        }
    }

    /// getaddrinfo(3) for a passive stream socket: the first of the list is bound.
    private static func addressInfo(host: String, port: Int) throws -> UnsafeMutablePointer<addrinfo> {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let info = result else {
            throw SocketError.cannotResolve(reason: String(cString: gai_strerror(status)))
        }
        return info
    }

    private static func openTCP(host: String, port: Int, backlog: Int32) throws -> Int32 {
        let info = try addressInfo(host: host, port: port)
        defer { freeaddrinfo(info) }
        let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SocketError.failed("socket", errno: errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw SocketError.cannotBind(reason: reason)
        }
        return try listening(fd, backlog)
    }

    private static func openUnix(path: String, backlog: Int32) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SocketError.failed("socket", errno: errno) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: Array(path.utf8.prefix(raw.count - 1)))
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw SocketError.cannotBind(reason: reason)
        }
        return try listening(fd, backlog)
    }

    private static func listening(_ fd: Int32, _ backlog: Int32) throws -> Int32 {
        guard listen(fd, backlog) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw SocketError.cannotListen(reason: reason)
        }
        return fd
    }
}
