/// Why the sockets systemd passed (`LISTEN_FDS`, `LISTEN_FDNAMES`; sd_listen_fds(3)) cannot be
/// served.
public enum SocketActivationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `LISTEN_FDS` is not a count.
    case notACount(String)
    /// A socket's name is not a protocol Postern listens with.
    case unnamed(fd: Int32, name: String)
    /// A passed descriptor is not a listening socket.
    case notListening(fd: Int32, name: String)

    public var description: String {
        switch self {
        case .notACount(let text): "LISTEN_FDS=\(text): not a number of sockets"
        case .unnamed(let fd, let name):
            "socket activation: fd \(fd) is named \"\(name)\"; name each socket by its protocol (FileDescriptorName=fastcgi, scgi, uwsgi or http in the .socket unit; --fdname with systemd-socket-activate)"
        case .notListening(let fd, let name): "socket activation: fd \(fd) (\(name)) is not a listening socket"
        }
    }
}
