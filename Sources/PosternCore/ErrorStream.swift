import Logging

/// The application's error output (PEP 3333 `wsgi.errors`).
///
/// Each adapter decides where it goes: FastCGI sends it as FCGI_STDERR records (the front-end
/// writes them to its error log), CGI mode writes to the process's stderr, HTTP logs it.
public struct ErrorStream: Sendable {
    private let sink: @Sendable (String) -> Void
    private let noteSink: (@Sendable (String) -> Void)?
    /// Whether the messages already go to the gateway's own log (so a caller need not log twice).
    public let isGatewayLog: Bool

    public init(isGatewayLog: Bool = false, notes: (@Sendable (String) -> Void)? = nil, _ sink: @escaping @Sendable (String) -> Void) {
        self.isGatewayLog = isGatewayLog
        self.noteSink = notes
        self.sink = sink
    }

    /// Writes one message; a trailing newline is added if missing.
    public func write(_ message: String) {
        sink(message.hasSuffix("\n") ? message : message + "\n")
    }

    /// Writes one message about the client's request rather than a fault of the server (a 404, a
    /// 403): where the stream is the gateway's log it is logged at `info`, not `error`; elsewhere
    /// (FCGI_STDERR, a CGI program's stderr) it is written as ``write(_:)`` writes.
    public func note(_ message: String) {
        (noteSink ?? sink)(message.hasSuffix("\n") ? message : message + "\n")
    }

    /// An error stream that drops everything.
    public static let discard = ErrorStream { _ in }

    /// An error stream that logs each message at `error` level (a ``note(_:)`` at `info`).
    public static func logger(_ logger: Logger) -> ErrorStream {
        ErrorStream(
            isGatewayLog: true,
            notes: { message in logger.info("\(message.dropLast())", metadata: ["source": "app"]) }
        ) { message in
            logger.error("\(message.dropLast())", metadata: ["source": "app"])
        }
    }
}
