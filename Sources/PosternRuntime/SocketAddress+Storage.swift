import NIOCore

#if canImport(Glibc)
import Glibc
#endif

extension SocketAddress {
    /// The address `accept4` or `getsockname` filled in; `nil` for a unix socket's unnamed peer
    /// or an unknown family.
    package init?(storage: sockaddr_storage) {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            let address = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee } }
            self.init(address, host: "")
        case AF_INET6:
            let address = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee } }
            self.init(address, host: "")
        case AF_UNIX:
            let address = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_un.self, capacity: 1) { $0.pointee } }
            let path = withUnsafeBytes(of: address.sun_path) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
            guard !path.isEmpty, let unix = try? SocketAddress(unixDomainSocketPath: path) else { return nil }
            self = unix
        default:
            return nil
        }
    }

    /// The local address of a socket (`getsockname`).
    package static func local(of socket: CInt) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        guard status == 0 else { return nil }
        return SocketAddress(storage: storage)
    }
}

extension SocketAddress {
    /// `127.0.0.1:8080`, `[::1]:8080` or `unix:/run/app.sock`, as the listener flags write them.
    package var listenerText: String {
        switch self {
        case .v4: return "\(ipAddress ?? "?"):\(port ?? 0)"
        case .v6: return "[\(ipAddress ?? "?")]:\(port ?? 0)"
        case .unixDomainSocket: return "unix:\(pathname ?? "?")"
        }
    }
}
