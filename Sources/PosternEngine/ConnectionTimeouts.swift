import NIOCore
import PosternCore

/// A connection's read deadlines as one value, for every protocol: events in, timer actions out.
/// It performs no I/O and reads no clock; ``ConnectionTimeoutHandler`` feeds it a SwiftNIO
/// pipeline's events and the tests feed it plain calls.
///
/// Two rules, after what nginx (`client_header_timeout`, `client_body_timeout`,
/// `keepalive_timeout`) and Apache's mod_reqtimeout enforce on their own clients:
///
/// 1. **The head.** Each request's head (an SCGI netstring, a uwsgi packet head, an HTTP request
///    head, a FastCGI PARAMS stream) must be complete within `--header-timeout` of when it
///    began: the connection's opening for the first; FCGI_BEGIN_REQUEST for each FastCGI
///    request (§5.1); the previous response's end for a later HTTP request on a kept connection,
///    which gets the longer of the header and idle timeouts. Trickling bytes does not reset it
///    (a slow-loris).
/// 2. **Idle.** While the server waits for bytes (a read is pending) and no application is
///    working on a complete request, bytes must arrive within `--idle-timeout` of the last ones,
///    or of the moment the server asked for them. This one rule covers a kept connection with
///    nothing to do, a head that stalls, and a body that stalls while its application reads it.
///    A slow application (backpressure: nothing asks for bytes) is not mistaken for a slow
///    client, and a long response (a download, an event stream) is never cut off.
///
/// ```
///   head began ──► .head(deadline) ──head complete──► .input ──input complete──► .working ──► ended
///                  (rule 1)                           (rule 2 while asked)       (suspends rule 2)
/// ```
/// Requests are named by an `Int` the caller picks: 0 for one-request protocols, the request id
/// for FastCGI, a running count for HTTP.
///
/// A later deadline, or none, does not touch the armed timer: it fires early and
/// ``timerFired(at:)`` re-arms it for the deadline that applies then, if any. A connection that
/// reads often costs no timer churn (IdleStateHandler does the same).
public struct ConnectionTimeouts: Sendable {
    public struct Limits: Sendable, Equatable {
        /// `--header-timeout`: the time a request's head may take.
        public var header: TimeAmount
        /// `--idle-timeout`: the time without bytes while the server waits for some.
        public var idle: TimeAmount

        public init(header: TimeAmount, idle: TimeAmount) {
            self.header = header
            self.idle = idle
        }

        /// The limits from `--header-timeout` and `--idle-timeout` (at least a millisecond each).
        public init(_ limits: GatewayLimits) {
            self.header = .milliseconds(Int64(max(limits.headerTimeoutSeconds, 0.001) * 1000))
            self.idle = .milliseconds(Int64(max(limits.idleTimeoutSeconds, 0.001) * 1000))
        }
    }

    /// Which rule closed the connection.
    public enum Expiry: Sendable, Equatable, CustomStringConvertible {
        case head
        case idle

        public var description: String {
            switch self {
            case .head: "the request head was not complete within --header-timeout"
            case .idle: "no bytes arrived within --idle-timeout"
            }
        }
    }

    /// What the caller does with its one timer.
    public enum Action: Sendable, Equatable {
        case none
        /// Arm the timer for this deadline (replacing an armed one).
        case schedule(NIODeadline)
        /// A deadline has passed: close the connection.
        case close(Expiry)
    }

    enum Phase: Sendable, Equatable {
        /// Reading the head, due by this deadline.
        case head(NIODeadline)
        /// The head is in, the body (or FastCGI's STDIN/DATA) is not.
        case input
        /// All input is in; the application works on it until the response ends.
        case working
    }

    public let limits: Limits
    private var requests: [Int: Phase] = [:]
    /// The last bytes read, or the moment the server asked for bytes after a pause.
    private var lastActivity: NIODeadline
    /// The server has asked for bytes and none have come since.
    private var readPending = false
    /// The deadline the caller's timer is armed for.
    private var armed: NIODeadline?
    private var closed = false

    /// A connection opened at `now`; the first head's clock starts when the caller says so.
    public init(limits: Limits, openedAt now: NIODeadline) {
        self.limits = limits
        self.lastActivity = now
    }

    /// The earliest deadline that applies now, and the rule it belongs to.
    public var deadline: (NIODeadline, Expiry)? {
        var earliest: (NIODeadline, Expiry)?
        var working = false
        for phase in requests.values {
            switch phase {
            case .head(let due):
                if earliest == nil || due < earliest!.0 { earliest = (due, .head) }
            case .input:
                break
            case .working:
                working = true
            }
        }
        if readPending && !working {
            let due = lastActivity + limits.idle
            if earliest == nil || due < earliest!.0 { earliest = (due, .idle) }
        }
        return earliest
    }

    /// No request is in progress on the connection.
    public var isQuiet: Bool { requests.isEmpty }

    /// A request's head began at `now` (the connection opened, a FastCGI BEGIN_REQUEST arrived,
    /// the previous HTTP response ended); it may take `allowance` (default: the header timeout).
    public mutating func headBegan(_ request: Int, at now: NIODeadline, allowance: TimeAmount? = nil) -> Action {
        requests[request] = .head(now + (allowance ?? limits.header))
        return reconcile()
    }

    /// The head of `request` is complete; `inputComplete` when no body follows it.
    public mutating func headCompleted(_ request: Int, inputComplete: Bool) -> Action {
        requests[request] = inputComplete ? .working : .input
        return reconcile()
    }

    /// The body of `request` is complete (the last chunk, the empty STDIN record).
    public mutating func inputCompleted(_ request: Int) -> Action {
        if requests[request] != nil { requests[request] = .working }
        return reconcile()
    }

    /// The response to `request` has ended (or the request was refused or aborted).
    public mutating func requestEnded(_ request: Int) -> Action {
        requests[request] = nil
        return reconcile()
    }

    /// The server asks the peer for bytes (a SwiftNIO `read()`).
    public mutating func readRequested(at now: NIODeadline) -> Action {
        if !readPending {
            readPending = true
            if now > lastActivity { lastActivity = now }
        }
        return reconcile()
    }

    /// Bytes arrived at `now`.
    public mutating func bytesRead(at now: NIODeadline) -> Action {
        readPending = false
        if now > lastActivity { lastActivity = now }
        return reconcile()
    }

    /// The armed timer fired at `now`: close if a deadline has passed, or re-arm for the next.
    public mutating func timerFired(at now: NIODeadline) -> Action {
        armed = nil
        guard !closed else { return .none }
        if let (due, expiry) = deadline, due <= now {
            closed = true
            return .close(expiry)
        }
        return reconcile()
    }

    /// The action that leaves the caller's timer armed for the earliest deadline, or earlier.
    private mutating func reconcile() -> Action {
        guard !closed, let (due, _) = deadline else { return .none }
        if let armed, armed <= due { return .none }
        armed = due
        return .schedule(due)
    }
}
