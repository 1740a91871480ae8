import Logging
import PosternCore

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
    /// Sees every request (access log, metrics); `nil` for none.
    public var observer: (any RequestObserver)?
    /// Bounds concurrent application calls (`--max-concurrency`); `nil` for no bound.
    public var concurrencyGate: ConcurrencyGate?

    public init(
        application: any Application,
        limits: GatewayLimits = GatewayLimits(),
        flags: GatewayFlags = GatewayFlags(),
        serverSoftware: String = PosternVersion.serverSoftware,
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
    /// environ's error stream and the log. A request that waits for a concurrency slot and runs
    /// longer than ``GatewayLimits/requestTimeoutSeconds`` is answered 504 and its application
    /// task cancelled (not awaited). Cancellation (client gone) is rethrown, and so is an
    /// application that gave up on ``RequestBodyError/disconnected`` (as a `CancellationError`).
    ///
    /// This is the one place every adapter runs the application, so the ``observer`` (access
    /// log, metrics) sees every request of every protocol here.
    public func respond(to environ: Environ, logger: Logger) async throws(CancellationError) -> Response {
        let tracker = observer.map { RequestTracker(observer: $0, environ: environ) }
        let response: Response
        var timedOut = false
        do {
            if let result = try await callApplication(environ) {
                response = result
            } else {
                timedOut = true
                let seconds = limits.requestTimeoutSeconds
                logger.error("request timed out; answered 504, the application task is cancelled", metadata: ["timeout": "\(seconds)"])
                environ.errors.write("postern: request timed out after \(seconds) s (--timeout)")
                response = errorResponse(.gatewayTimeout, detail: "the request ran longer than --timeout \(seconds) s")
            }
        } catch is CancellationError {
            // 499: nginx's "client closed request", so the access log says what happened.
            tracker?.finish(status: 499, bytes: 0, timedOut: false)
            throw CancellationError()
        } catch RequestBodyError.disconnected {
            // The application stopped because the peer went away mid-body: the client's doing,
            // not an application error, and nobody is left to read a 500.
            logger.info("the client disconnected before the request body was complete")
            tracker?.finish(status: 499, bytes: 0, timedOut: false)
            throw CancellationError()
        } catch {
            logger.error("application error", metadata: ["error": "\(error)"])
            environ.errors.write("postern: application error: \(error)")
            return observed(errorResponse(.internalServerError, detail: "\(error)"), tracker)
        }
        do {
            try HeaderSafety.check(response)
        } catch {
            logger.error("unsafe response refused", metadata: ["error": "\(error)"])
            environ.errors.write("postern: unsafe response refused: \(error)")
            return observed(errorResponse(.internalServerError, detail: error.description), tracker)
        }
        return observed(response, tracker, timedOut: timedOut)
    }

    private func observed(_ response: Response, _ tracker: RequestTracker?, timedOut: Bool = false) -> Response {
        tracker?.observe(response, timedOut: timedOut) ?? response
    }

    /// The application's response; `nil` when ``GatewayLimits/requestTimeoutSeconds`` passed.
    private func callApplication(_ environ: Environ) async throws -> Response? {
        let application = self.application
        let gate = concurrencyGate
        let seconds = limits.requestTimeoutSeconds
        guard seconds > 0 else {
            try await gate?.acquire()
            defer { gate?.release() }
            return try await application.respond(to: environ)
        }
        // The wait for a slot counts against the deadline; the slot is held by the application
        // task until it really ends (a task that ignores cancellation still occupies it).
        return try await RequestTimeout.run(seconds: seconds, observer: observer) {
            try await gate?.acquire()
            defer { gate?.release() }
            return try await application.respond(to: environ)
        }
    }

    /// A plain error page: the status alone, or with `detail` when `debug` is on.
    public func errorResponse(_ status: ResponseStatus, detail: String? = nil) -> Response {
        if debug, let detail {
            return .text("\(status)\n\n\(detail)\n", status: status)
        }
        return .error(status)
    }
}
