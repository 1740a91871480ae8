import Logging

/// What every protocol server needs: the application, the limits, how this process serves.
public struct GatewayConfiguration: Sendable {
    /// The application every listener serves.
    public var application: any Application
    public var limits: GatewayLimits
    public var flags: GatewayFlags
    /// `SERVER_SOFTWARE` for adapters that fill it themselves.
    public var serverSoftware: String
    /// Show error details to clients (never by default: flup's `debug=True` lesson).
    public var debug: Bool
    public var logger: Logger

    public init(
        application: any Application,
        limits: GatewayLimits = GatewayLimits(),
        flags: GatewayFlags = GatewayFlags(),
        serverSoftware: String = "Postern/0.1",
        debug: Bool = false,
        logger: Logger = Logger(label: "postern")
    ) {
        self.application = application
        self.limits = limits
        self.flags = flags
        self.serverSoftware = serverSoftware
        self.debug = debug
        self.logger = logger
    }

    /// Runs the application for one request, never throwing: an error thrown by the application
    /// or a response that fails ``HeaderSafety`` becomes a plain 500, and the reason goes to the
    /// environ's error stream and the log. Cancellation (client gone, timeout) is rethrown.
    public func respond(to environ: Environ, logger: Logger) async throws(CancellationError) -> Response {
        let response: Response
        do {
            response = try await application.respond(to: environ)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            logger.error("application error", metadata: ["error": "\(error)"])
            environ.errors.write("postern: application error: \(error)")
            return errorResponse(.internalServerError, detail: "\(error)")
        }
        do {
            try HeaderSafety.check(response)
        } catch {
            logger.error("unsafe response refused", metadata: ["error": "\(error)"])
            environ.errors.write("postern: unsafe response refused: \(error)")
            return errorResponse(.internalServerError, detail: error.description)
        }
        return response
    }

    /// A plain error page: the status alone, or with `detail` when `debug` is on.
    public func errorResponse(_ status: ResponseStatus, detail: String? = nil) -> Response {
        if debug, let detail {
            return .text("\(status)\n\n\(detail)\n", status: status)
        }
        return .error(status)
    }
}
