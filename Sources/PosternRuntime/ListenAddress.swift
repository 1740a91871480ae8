/// Where a listener listens: `HOST:PORT`, `[IPv6]:PORT`, `unix:PATH` or `fd:N`.
///
/// `fd:N` takes a socket that is already bound and listening, as inherited from a process
/// manager (mod_fcgid, lighttpd `bin-path` and spawn-fcgi pass it as fd 0).
public enum ListenAddress: Sendable, Hashable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unix(path: String)
    case fd(Int32)

    public init(parsing text: String) throws(ListenAddressError) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard !path.isEmpty else { throw ListenAddressError(text, "unix: needs a socket path") }
            guard path.utf8.count < 108 else { throw ListenAddressError(text, "a unix socket path is at most 107 bytes") }
            self = .unix(path: path)
        } else if text.hasPrefix("fd:") {
            guard let fd = Int32(text.dropFirst(3)), fd >= 0 else {
                throw ListenAddressError(text, "fd: needs a file descriptor number")
            }
            self = .fd(fd)
        } else {
            let host: Substring
            let portText: Substring
            if text.hasPrefix("[") {
                guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                    throw ListenAddressError(text, "write an IPv6 address as [ADDR]:PORT")
                }
                host = text[text.index(after: text.startIndex)..<close]
                portText = text[text.index(close, offsetBy: 2)...]
            } else {
                guard let colon = text.lastIndex(of: ":") else {
                    throw ListenAddressError(text, "expected HOST:PORT, unix:PATH or fd:N")
                }
                host = text[..<colon]
                portText = text[text.index(after: colon)...]
            }
            guard !host.isEmpty else { throw ListenAddressError(text, "the host is empty (use 127.0.0.1 for loopback)") }
            guard let port = Int(portText), (0...65535).contains(port) else {
                throw ListenAddressError(text, "the port must be a number from 0 to 65535")
            }
            self = .tcp(host: String(host), port: port)
        }
    }

    public var description: String {
        switch self {
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): return "unix:\(path)"
        case .fd(let fd): return "fd:\(fd)"
        }
    }
}

public struct ListenAddressError: Error, CustomStringConvertible, Sendable {
    public let text: String
    public let reason: String

    init(_ text: String, _ reason: String) {
        self.text = text
        self.reason = reason
    }

    public var description: String { "invalid listen address \(String(reflecting: text)): \(reason)" }
}
