import Logging
import Metrics
import PosternCore
import PosternEngine
import PosternRuntime
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// This process's request counters, fed by the one place every protocol runs the application
/// (a ``RequestObserver``): requests by protocol and status, errors, timeouts, in flight,
/// latency histogram. It also writes the access log line and reports to swift-metrics (for an
/// embedder that bootstraps its own backend), and tells the worker when its `--max-requests`
/// share is served.
public final class GatewayStats: RequestObserver {
    private let state: Mutex<StatsSnapshot>
    private let accessLog: AccessLog?
    private let finishedCount = Atomic<Int>(0)
    private let requestLimit: Int
    private let onLimit: (@Sendable () -> Void)?
    private let abandonedLimit: Int
    private let onAbandonedLimit: (@Sendable (Int) -> Void)?
    /// `--slow-log`, when given: told of every request's start and end.
    package let slowLog: SlowRequestLog?
    private let logger: Logger
    /// swift-metrics handles, made once per protocol and status instead of once per request (a
    /// lookup in the backend's registry each time).
    private let metrics = Mutex<(counters: [MetricKey: Counter], timers: [GatewayProtocol: Metrics.Timer])>(([:], [:]))

    private struct MetricKey: Hashable {
        let gatewayProtocol: GatewayProtocol
        let status: Int
    }

    /// - Parameters:
    ///   - requestLimit: after this many finished requests `onLimit` is called once (0: never).
    ///   - abandonedLimit: when this many timed-out application tasks are still running at once,
    ///     `onAbandonedLimit` is called with the count, each time the count reaches it (0: never).
    public init(
        accessLog: AccessLog? = nil, requestLimit: Int = 0, onLimit: (@Sendable () -> Void)? = nil,
        abandonedLimit: Int = 0, onAbandonedLimit: (@Sendable (Int) -> Void)? = nil,
        slowLog: SlowRequestLog? = nil, logger: Logger = Logger(label: "postern")
    ) {
        self.slowLog = slowLog
        self.logger = logger
        var initial = StatsSnapshot()
        initial.pid = ProcessIdentity.pid
        self.state = Mutex(initial)
        self.accessLog = accessLog
        self.requestLimit = requestLimit
        self.onLimit = onLimit
        self.abandonedLimit = abandonedLimit
        self.onAbandonedLimit = onAbandonedLimit
    }

    public var snapshot: StatsSnapshot {
        var snapshot = state.withLock { $0 }
        snapshot.slowRequests = slowLog?.slowRequests ?? 0
        // Counted by the ticket keys' callback, one per process (a process serves one set of TLS listeners).
        if snapshot.tlsCertificateNotAfter != nil { snapshot.tlsSessionsResumed = Int(TLSTicketKeys.ticketsOpened) }
        return snapshot
    }

    public func requestStarted(_ environ: Environ) {
        state.withLock { $0.inFlight += 1 }
    }

    public func requestStarted(_ environ: Environ, id: Int) {
        requestStarted(environ)
        slowLog?.began(id, environ)
    }

    public func requestFinished(_ record: RequestRecord) {
        count(record, started: true)
        slowLog?.ended(record, logger: logger)
    }

    public func requestRefused(_ record: RequestRecord) {
        count(record, started: false)
    }

    public func connectionRefused() {
        state.withLock { $0.limitRefusals += 1 }
    }

    public func tlsHandshakeEnded(succeeded: Bool) {
        state.withLock {
            if succeeded { $0.tlsHandshakes += 1 } else { $0.tlsHandshakeFailures += 1 }
        }
    }

    /// The TLS listeners serve a certificate that expires at `notValidAfter` (seconds since the
    /// epoch): the status page shows how long it has left.
    public func servesCertificate(notValidAfter: Int) {
        state.withLock { $0.tlsCertificateNotAfter = notValidAfter }
    }

    private func count(_ record: RequestRecord, started: Bool) {
        let seconds = record.duration.inSeconds
        state.withLock { stats in
            if started { stats.inFlight -= 1 }
            stats.requests += 1
            stats.byProtocol[record.gatewayProtocol.rawValue, default: 0] += 1
            stats.byStatus[String(record.status), default: 0] += 1
            if record.status >= 500 && record.status != 599 { stats.errors += 1 }
            if record.timedOut { stats.timeouts += 1 }
            // A refusal took no application time: the latency figures are the application's.
            if started {
                stats.latencyBuckets[StatsSnapshot.bucket(for: seconds)] += 1
                stats.latencySumSeconds += seconds
            }
        }
        let (counter, timer) = metricHandles(protocol: record.gatewayProtocol, status: record.status)
        counter.increment()
        if started { timer.recordNanoseconds(Int64(seconds * 1e9)) }
        accessLog?.write(record)
        if started, requestLimit > 0 {
            let count = finishedCount.add(1, ordering: .relaxed).newValue
            if count == requestLimit { onLimit?() }
        }
    }

    private func metricHandles(protocol: GatewayProtocol, status: Int) -> (Counter, Metrics.Timer) {
        let key = MetricKey(gatewayProtocol: `protocol`, status: status)
        return metrics.withLock { metrics in
            let counter =
                metrics.counters[key]
                ?? {
                    let made = Counter(label: "postern_requests_total", dimensions: [("protocol", `protocol`.rawValue), ("status", String(status))])
                    metrics.counters[key] = made
                    return made
                }()
            let timer =
                metrics.timers[`protocol`]
                ?? {
                    let made = Metrics.Timer(label: "postern_request_duration", dimensions: [("protocol", `protocol`.rawValue)])
                    metrics.timers[`protocol`] = made
                    return made
                }()
            return (counter, timer)
        }
    }

    public func abandonedTasksChanged(by delta: Int) {
        let count = state.withLock { stats in
            stats.abandonedTasks += delta
            return stats.abandonedTasks
        }
        if delta > 0, abandonedLimit > 0, count == abandonedLimit { onAbandonedLimit?(count) }
    }
}

/// The process id, read once.
package enum ProcessIdentity {
    package static let pid: Int32 = getpid()
}
