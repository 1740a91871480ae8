#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why `postern request` or `postern top` could not get its answer: what it tried to reach and
/// why.
public enum ClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `fd:N` names a listener, not a peer.
    case notAnAddress(fd: Int32)
    /// A TLS option cannot be used (the files are named in the text).
    case tls(String)
    /// The server could not be reached or broke the exchange: the protocol, where, and why.
    case unreachable(server: String, reason: String)
    /// The status page answered with another status than 200.
    case statusPageAnswered(address: String, status: Int)
    /// The answer was not the status page's JSON.
    case notAStatusPage(url: String)

    /// errno as strerror(3) words it, for ``unreachable(server:reason:)``.
    public static func reason(errno code: Int32) -> String {
        String(cString: strerror(code))
    }

    public var description: String {
        switch self {
        case .notAnAddress(let fd): "fd:\(fd) is a listener, not an address a client can connect to"
        case .tls(let text): text
        case .unreachable(let server, let reason): "\(server): \(reason)"
        case .statusPageAnswered(let address, let status): "status page at \(address) answered \(status)"
        case .notAStatusPage(let url): "\(url) is not a Postern status page (its answer is not the status JSON)"
        }
    }
}
