import Foundation

/// Why a front-end (or another process started for a test or a benchmark) is not serving.
public enum FrontEndError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Nothing accepted connections on the port in time.
    case notListening(port: Int, seconds: Double)
    /// No socket file appeared at the path in time.
    case noSocket(path: String, seconds: Double)
    /// The front-end did not start: why, and what it logged.
    case didNotStart(kind: String, reason: String, logs: String)
    /// posix_spawn(3) failed.
    case cannotStart(executable: String, errno: Int32)

    public var description: String {
        switch self {
        case .notListening(let port, let seconds): "nothing listens on port \(port) after \(seconds) s"
        case .noSocket(let path, let seconds): "no socket at \(path) after \(seconds) s"
        case .didNotStart(let kind, let reason, let logs): "\(kind) did not start: \(reason)\n\(logs)"
        case .cannotStart(let executable, let errno): "cannot start \(executable): \(String(cString: strerror(errno)))"
        }
    }
}
