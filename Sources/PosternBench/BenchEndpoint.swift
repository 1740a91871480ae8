/// Where a mode's backend listens, and which process to watch for its memory.

/// A backend's address as the front-end reaches it, and the process whose tree holds its workers.
public struct BenchEndpoint: Sendable {
    public enum Address: Sendable {
        case tcp(port: Int)
        case unix(path: String)
    }

    public var address: Address
    /// The backend process (nil for CGI modes: one process per request, nothing persistent to measure).
    public var pid: Int32?

    public var tcpPort: Int? {
        if case .tcp(let port) = address { return port }
        return nil
    }

    public var hostPort: String {
        switch address {
        case .tcp(let port): "127.0.0.1:\(port)"
        case .unix(let path): "unix:\(path)"
        }
    }
}
