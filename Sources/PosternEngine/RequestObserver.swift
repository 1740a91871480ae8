import PosternCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Watches every request at the one place all adapters run the application
/// (``GatewayConfiguration/respond(to:logger:)``): the access log and the metrics live behind it.
public protocol RequestObserver: Sendable {
    /// A request reached the gateway contract (it may still wait for a concurrency slot).
    func requestStarted(_ environ: Environ)
    /// The same, with the number its ``RequestRecord/id`` will carry when it finishes.
    func requestStarted(_ environ: Environ, id: Int)
    /// The request is over: its response has been handed to the adapter and its body written
    /// (or abandoned). Called exactly once per ``requestStarted(_:)``.
    func requestFinished(_ record: RequestRecord)
    /// The application task of a timed-out request ignored its cancellation and still runs
    /// (`delta` +1), or has finally ended (`delta` -1).
    func abandonedTasksChanged(by delta: Int)
    /// A request the adapter answered itself, before the contract (a malformed HTTP request's
    /// 400, a body over the limit's 413): counted and access-logged, never started.
    func requestRefused(_ record: RequestRecord)
    /// A connection turned away over `--max-connections` (told "busy" in its protocol before
    /// its request was read).
    func connectionRefused()
    /// A TLS listener's handshake completed, or failed (the connection was closed).
    func tlsHandshakeEnded(succeeded: Bool)
}

extension RequestObserver {
    public func requestStarted(_ environ: Environ, id: Int) { requestStarted(environ) }
    public func requestRefused(_ record: RequestRecord) {}
    public func connectionRefused() {}
    public func tlsHandshakeEnded(succeeded: Bool) {}
}

/// One finished request, as the access log and the metrics see it.
///
/// The parts that come from the environ (address, user, method, target, protocol) are read from
/// it when asked for, not when the record is made: the counters behind every request need only
/// the protocol, the status and the time, and the access log is off by default.
public struct RequestRecord: Sendable {
    /// The number ``RequestObserver/requestStarted(_:id:)`` was given (0 for a refusal).
    public var id = 0
    public var gatewayProtocol: GatewayProtocol
    /// `REMOTE_ADDR`, or `-`.
    public var remoteAddress: String {
        get { given.remoteAddress ?? variables.flatMap { Self.nonEmpty($0["REMOTE_ADDR"]) } ?? "-" }
        set { given.remoteAddress = newValue }
    }
    /// `REMOTE_USER`, or `-`.
    public var remoteUser: String {
        get { given.remoteUser ?? variables.flatMap { Self.nonEmpty($0["REMOTE_USER"]) } ?? "-" }
        set { given.remoteUser = newValue }
    }
    public var method: String {
        get { given.method ?? variables?["REQUEST_METHOD"]?.string ?? "GET" }
        set { given.method = newValue }
    }
    /// `REQUEST_URI` when the front-end sent it, else SCRIPT_NAME + PATH_INFO + `?` QUERY_STRING.
    public var target: String {
        get {
            if let target = given.target { return target }
            guard let variables else { return "-" }
            if let uri = Self.nonEmpty(variables["REQUEST_URI"]) { return uri }
            let query = variables["QUERY_STRING"]?.string ?? ""
            let path = (variables["SCRIPT_NAME"]?.string ?? "") + (variables["PATH_INFO"]?.string ?? "")
            return path + (query.isEmpty ? "" : "?" + query)
        }
        set { given.target = newValue }
    }
    public var serverProtocol: String {
        get { given.serverProtocol ?? variables?["SERVER_PROTOCOL"]?.string ?? "-" }
        set { given.serverProtocol = newValue }
    }
    public var status: Int
    /// Response body bytes written by the adapter (head excluded), as far as the gateway saw them.
    public var bytes: Int
    /// Seconds since the epoch when the request reached the gateway.
    public var startedAt: Double
    public var duration: Duration
    /// The request hit `--timeout` and was answered 504.
    public var timedOut: Bool

    /// The request's variables, read by the properties above (`nil`: refused before the normalizer).
    private let variables: EnvironVariables?
    /// What was set explicitly (a refusal's parts, or a change made after the record was made).
    private var given = Given()

    private struct Given: Sendable {
        var remoteAddress: String?
        var remoteUser: String?
        var method: String?
        var target: String?
        var serverProtocol: String?
    }

    private static func nonEmpty(_ value: EnvironValue?) -> String? {
        guard let value, !value.isEmpty else { return nil }
        return value.string
    }

    /// The wall clock now, in seconds since the epoch (what `startedAt` holds).
    public static func wallClockNow() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// A request with no environ (refused before the normalizer finished): the parts known.
    public init(
        gatewayProtocol: GatewayProtocol, remoteAddress: String, method: String, target: String, serverProtocol: String,
        status: Int, startedAt: Double
    ) {
        self.gatewayProtocol = gatewayProtocol
        self.variables = nil
        self.given = Given(remoteAddress: remoteAddress, remoteUser: "-", method: method, target: target, serverProtocol: serverProtocol)
        self.status = status
        self.bytes = 0
        self.startedAt = startedAt
        self.duration = .zero
        self.timedOut = false
    }

    public init(environ: Environ, status: Int, bytes: Int, startedAt: Double, duration: Duration, timedOut: Bool) {
        self.gatewayProtocol = environ.gatewayProtocol
        self.variables = environ.variables
        self.status = status
        self.bytes = bytes
        self.startedAt = startedAt
        self.duration = duration
        self.timedOut = timedOut
    }
}
