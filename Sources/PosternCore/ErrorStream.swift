import Logging

/// The application's error output (PEP 3333 `wsgi.errors`).
///
/// Each adapter decides where it goes: FastCGI sends it as FCGI_STDERR records (the front-end
/// writes them to its error log), CGI mode writes to the process's stderr, HTTP logs it.
public struct ErrorStream: Sendable {
    private let sink: @Sendable (String) -> Void

    public init(_ sink: @escaping @Sendable (String) -> Void) {
        self.sink = sink
    }

    /// Writes one message; a trailing newline is added if missing.
    public func write(_ message: String) {
        sink(message.hasSuffix("\n") ? message : message + "\n")
    }

    /// An error stream that drops everything.
    public static let discard = ErrorStream { _ in }

    /// An error stream that logs each message at `error` level.
    public static func logger(_ logger: Logger) -> ErrorStream {
        ErrorStream { message in
            var line = message
            if line.hasSuffix("\n") { line.removeLast() }
            logger.error("\(line)", metadata: ["source": "app"])
        }
    }
}
