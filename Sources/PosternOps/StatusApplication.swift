import FoundationEssentials
import NIOCore
import PosternCore
import Prometheus

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The status endpoint (`--status ADDR`), the way php-fpm's status page and uWSGI's stats server
/// are used: `/` (or `/status`) answers JSON (snake_case keys, php-fpm's names where php-fpm has
/// the figure), `/metrics` the Prometheus text format (rendered by swift-prometheus). With
/// workers, the numbers are the master's sum over every worker.
package struct StatusApplication: Application {
    package let source: @Sendable () -> StatusReading
    package let mode: String

    package init(source: @escaping @Sendable () -> StatusReading, mode: String) {
        self.source = source
        self.mode = mode
    }

    package func respond(to environ: Environ) async throws -> Response {
        let reading = source()
        switch environ.pathInfo {
        case "/metrics":
            return Response(
                status: .ok,
                headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(bytes: Self.prometheus(reading))
            )
        case "/", "/status", "":
            return Response(status: .ok, headers: ["Content-Type": "application/json"], body: ResponseBody(string: json(reading)))
        default:
            return .error(.notFound)
        }
    }

    private func json(_ reading: StatusReading) -> String {
        let total = reading.total
        let now = Date().timeIntervalSince1970
        let active = reading.workers.filter { $0.inFlight > 0 }.count
        let document = StatusDocument(
            mode: mode,
            pid: ProcessIdentity.pid,
            startTime: Int(reading.startTime),
            startSince: Int(now - reading.startTime),
            acceptedConn: total.requests,
            listenQueue: reading.listeners.reduce(0) { $0 + $1.queued },
            maxListenQueue: reading.listeners.reduce(0) { $0 + $1.maxQueued },
            listenQueueLen: reading.listeners.reduce(0) { $0 + $1.length },
            listeners: reading.listeners,
            activeWorkers: active,
            idleWorkers: reading.workers.count - active,
            totalWorkers: reading.workers.count,
            maxActiveWorkers: max(reading.maxActiveWorkers, active),
            workerCount: reading.workers.count,
            workerRestarts: reading.restarts,
            harakiriKills: reading.harakiriKills,
            limitRefusals: total.limitRefusals,
            tlsHandshakes: total.tlsHandshakes,
            tlsHandshakeFailures: total.tlsHandshakeFailures,
            tlsSessionsResumed: total.tlsSessionsResumed,
            tlsCertificateNotAfter: total.tlsCertificateNotAfter,
            tlsCertificateExpiresIn: total.tlsCertificateNotAfter.map { $0 - Int(now) },
            requests: total.requests,
            inFlight: total.inFlight,
            byProtocol: total.byProtocol,
            byStatus: total.byStatus,
            errors: total.errors,
            timeouts: total.timeouts,
            abandonedTasks: total.abandonedTasks,
            slowRequests: total.slowRequests,
            latency: .init(
                meanSeconds: total.latencyBuckets.reduce(0, +) == 0 ? 0 : total.latencySumSeconds / Double(total.latencyBuckets.reduce(0, +)),
                p50Seconds: total.latencyPercentile(0.5),
                p90Seconds: total.latencyPercentile(0.9),
                p99Seconds: total.latencyPercentile(0.99),
                percentiles: "estimated: linear within the histogram bucket that holds them, as Prometheus's histogram_quantile",
                buckets: Self.cumulativeBuckets(total).map { .init(le: $0.bound, count: $0.count) }
            ),
            workers: reading.workers,
            lastReload: reading.lastReload,
            crashLoop: reading.crashLoop,
            elastic: reading.elastic
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return (try? String(decoding: encoder.encode(document), as: UTF8.self)) ?? "{}"
    }

    /// The Prometheus exposition of the counters: a fresh registry per scrape, filled from the
    /// summed snapshot (so the numbers are the whole pool's, not this process's alone).
    package static func prometheus(_ reading: StatusReading) -> [UInt8] {
        let total = reading.total
        let registry = PrometheusCollectorRegistry()
        for (proto, count) in total.byProtocol.sorted(by: { $0.key < $1.key }) {
            registry.makeCounter(descriptor: metric("requests", "total", "Requests served, by protocol."), labels: [("protocol", proto)])
                .increment(by: Int64(count))
        }
        for (status, count) in total.byStatus.sorted(by: { $0.key < $1.key }) {
            registry.makeCounter(descriptor: metric("responses", "total", "Responses, by status code."), labels: [("status", status)])
                .increment(by: Int64(count))
        }
        registry.makeCounter(descriptor: metric("errors", "total", "Responses with a 5xx status.")).increment(by: Int64(total.errors))
        registry.makeCounter(descriptor: metric("timeouts", "total", "Requests answered 504 by --timeout.")).increment(by: Int64(total.timeouts))
        registry.makeGauge(descriptor: metric("requests_in_flight", "", "Requests in progress.")).set(Double(total.inFlight))
        registry.makeGauge(descriptor: metric("abandoned_tasks", "", "Timed-out application tasks that ignored cancellation.")).set(
            Double(total.abandonedTasks))
        registry.makeCounter(descriptor: metric("slow_requests", "total", "Requests reported by --slow-log while they ran.")).increment(
            by: Int64(total.slowRequests))
        registry.makeGauge(descriptor: metric("workers", "", "Processes serving requests: the live workers, or 1 without --workers.")).set(
            Double(reading.workers.count))
        registry.makeGauge(descriptor: metric("active_workers", "", "Workers with a request in flight.")).set(
            Double(reading.workers.filter { $0.inFlight > 0 }.count))
        registry.makeCounter(descriptor: metric("harakiri_kills", "total", "Workers killed by --harakiri.")).increment(by: Int64(reading.harakiriKills))
        registry.makeCounter(descriptor: metric("limit_refusals", "total", "Connections turned away over --max-connections.")).increment(
            by: Int64(total.limitRefusals))
        registry.makeCounter(descriptor: metric("worker_restarts", "total", "Workers replaced (died, recycled, killed).")).increment(
            by: Int64(reading.restarts))
        if let notAfter = total.tlsCertificateNotAfter {
            registry.makeCounter(descriptor: metric("tls_handshakes", "total", "TLS handshakes completed on the TLS listeners.")).increment(
                by: Int64(total.tlsHandshakes))
            registry.makeCounter(
                descriptor: metric("tls_handshake_failures", "total", "TLS handshakes that failed (plaintext, a refused or missing client certificate).")
            ).increment(by: Int64(total.tlsHandshakeFailures))
            registry.makeCounter(
                descriptor: metric("tls_sessions_resumed", "total", "TLS handshakes that resumed a session from a ticket (the rest were full).")
            ).increment(by: Int64(total.tlsSessionsResumed))
            registry.makeGauge(
                descriptor: metric("tls_certificate_expiry", "seconds", "Seconds until the served certificate expires (negative: expired).")
            ).set(Double(notAfter) - Date().timeIntervalSince1970)
        }
        for listener in reading.listeners {
            let labels = [("protocol", listener.protocol), ("address", listener.address)]
            registry.makeGauge(
                descriptor: metric("listen_queue", "", "Connections waiting in the listening socket's accept queue (the kernel's figure)."), labels: labels
            )
            .set(Double(listener.queued))
            registry.makeGauge(
                descriptor: metric("listen_queue_length", "", "The accept queue's length (--backlog, capped at net.core.somaxconn)."), labels: labels
            )
            .set(Double(listener.length))
        }
        return registry.emitToBuffer() + Array(histogram(total).utf8)
    }

    /// The latency histogram in the Prometheus text format (a histogram: cumulative `_bucket`
    /// lines, `_sum`, `_count`), written here because the registry's histograms record single
    /// observations and these counts are already summed over the processes.
    package static func histogram(_ total: StatsSnapshot) -> String {
        let name = "postern_request_duration_seconds"
        var text = "# HELP \(name) Request latency, from the request's start to its response's end.\n# TYPE \(name) histogram\n"
        for (bound, count) in cumulativeBuckets(total) {
            text += "\(name)_bucket{le=\"\(bound.map { "\($0)" } ?? "+Inf")\"} \(count)\n"
        }
        text += "\(name)_sum \(total.latencySumSeconds)\n\(name)_count \(total.latencyBuckets.reduce(0, +))\n"
        return text
    }

    /// (upper bound, requests at or under it), the open last bucket's bound `nil`.
    package static func cumulativeBuckets(_ total: StatsSnapshot) -> [(bound: Double?, count: Int)] {
        var running = 0
        return total.latencyBuckets.enumerated().map { index, count in
            running += count
            return (index < StatsSnapshot.latencyBounds.count ? StatsSnapshot.latencyBounds[index] : nil, running)
        }
    }

    /// `postern_<name>_<unit>` (no unit: `postern_<name>`).
    private static func metric(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "postern", metricName: name, unitName: unit, helpText: help)
    }
}

/// What the status endpoint shows, gathered by the process that serves it (a single process
/// about itself, a master about its workers).
package struct StatusReading: Sendable {
    package var total: StatsSnapshot
    package var workers: [WorkerStatus]
    package var restarts = 0
    package var harakiriKills = 0
    /// The most workers seen busy at once (sampled every 200 ms).
    package var maxActiveWorkers = 0
    package var listeners: [ListenQueueMonitor.Reading] = []
    /// Seconds since the epoch.
    package var startTime: Double
    /// A master's last reload (SIGHUP, SIGUSR2), when there was one.
    package var lastReload: ReloadReport?
    /// A master's crash loop, while it lasts.
    package var crashLoop: CrashLoopReport?
    /// A master's `--workers-min`/`--workers-max`, when they differ.
    package var elastic: ElasticReport?

    package init(
        total: StatsSnapshot, workers: [WorkerStatus], restarts: Int = 0, harakiriKills: Int = 0, maxActiveWorkers: Int = 0,
        listeners: [ListenQueueMonitor.Reading] = [], startTime: Double, lastReload: ReloadReport? = nil, crashLoop: CrashLoopReport? = nil,
        elastic: ElasticReport? = nil
    ) {
        self.total = total
        self.workers = workers
        self.restarts = restarts
        self.harakiriKills = harakiriKills
        self.maxActiveWorkers = maxActiveWorkers
        self.listeners = listeners
        self.startTime = startTime
        self.lastReload = lastReload
        self.crashLoop = crashLoop
        self.elastic = elastic
    }
}

/// `--workers-min`/`--workers-max` on the status page (`elastic`): the bounds, the count now and
/// the last decision.
package struct ElasticReport: Codable, Sendable, Equatable {
    package var workersMin: Int
    package var workersMax: Int
    package var grown: Int
    package var shrunk: Int
    /// `"grow 2: every worker busy for a second"`, `"shrink: 1 worker idle for …"`.
    package var lastDecision: String?
    /// Seconds since the epoch.
    package var lastDecisionTime: Int?

    package init(workersMin: Int, workersMax: Int, grown: Int = 0, shrunk: Int = 0, lastDecision: String? = nil, lastDecisionTime: Int? = nil) {
        self.workersMin = workersMin
        self.workersMax = workersMax
        self.grown = grown
        self.shrunk = shrunk
        self.lastDecision = lastDecision
        self.lastDecisionTime = lastDecisionTime
    }
}

/// A master's workers dying soon after they start (`crash_loop` on the status page).
package struct CrashLoopReport: Codable, Sendable, Equatable {
    /// Crashes in a row, each within 2 s of its start.
    package var crashes: Int
    /// The last one: pid, exit status, how long it lived, its last output.
    package var last: String
    /// Whether any worker serves meanwhile (if not, the master answers 503).
    package var serving: Int

    package init(crashes: Int, last: String, serving: Int) {
        self.crashes = crashes
        self.last = last
        self.serving = serving
    }
}

/// How a master's last reload ended, on the status page (`last_reload`).
package struct ReloadReport: Codable, Sendable, Equatable {
    /// The reload's number since the master started (1 for the first).
    package var generation: Int
    /// `reloading` while its new workers start, then `succeeded` or `failed`.
    package var outcome: String
    /// Why it failed: the new worker's exit status and last output.
    package var reason: String?
    /// Seconds since the epoch when it began.
    package var time: Int

    package init(generation: Int, outcome: String, reason: String?, time: Int) {
        self.generation = generation
        self.outcome = outcome
        self.reason = reason
        self.time = time
    }
}

/// One serving process on the status page.
package struct WorkerStatus: Codable, Sendable {
    package var pid: Int32
    package var rssBytes: Int
    package var requests: Int
    package var inFlight: Int
    /// `busy` (a request in flight), `idle`, `starting` (not reporting yet), `retiring`
    /// (draining after a reload or a recycle).
    package var state: String

    package init(_ snapshot: StatsSnapshot, state: String? = nil) {
        pid = snapshot.pid
        rssBytes = ResidentMemory.of(snapshot.pid) ?? 0
        requests = snapshot.requests
        inFlight = snapshot.inFlight
        self.state = state ?? (snapshot.inFlight > 0 ? "busy" : "idle")
    }
}

/// The JSON status document.
package struct StatusDocument: Codable {
    package struct Latency: Codable {
        struct Bucket: Codable {
            /// The bucket's upper bound in seconds; `null` for the open last one.
            var le: Double?
            /// Requests at or under `le` (cumulative, as Prometheus's `_bucket`).
            var count: Int
        }
        var meanSeconds: Double
        var p50Seconds: Double
        var p90Seconds: Double
        var p99Seconds: Double
        var percentiles: String
        var buckets: [Bucket]
    }
    package var mode: String
    package var pid: Int32
    package var startTime: Int
    package var startSince: Int
    /// php-fpm's name: requests accepted.
    package var acceptedConn: Int
    package var listenQueue: Int
    package var maxListenQueue: Int
    package var listenQueueLen: Int
    package var listeners: [ListenQueueMonitor.Reading]
    package var activeWorkers: Int
    package var idleWorkers: Int
    package var totalWorkers: Int
    package var maxActiveWorkers: Int
    package var workerCount: Int
    package var workerRestarts: Int
    package var harakiriKills: Int
    package var limitRefusals: Int
    package var tlsHandshakes: Int
    package var tlsHandshakeFailures: Int
    /// Of `tlsHandshakes`, those that resumed a session (the rest were full handshakes).
    package var tlsSessionsResumed: Int
    /// Seconds since the epoch; absent without a TLS listener.
    package var tlsCertificateNotAfter: Int?
    /// Seconds left (negative once expired); absent without a TLS listener.
    package var tlsCertificateExpiresIn: Int?
    package var requests: Int
    package var inFlight: Int
    package var byProtocol: [String: Int]
    package var byStatus: [String: Int]
    package var errors: Int
    package var timeouts: Int
    package var abandonedTasks: Int
    package var slowRequests: Int
    package var latency: Latency
    package var workers: [WorkerStatus]
    package var lastReload: ReloadReport?
    package var crashLoop: CrashLoopReport?
    package var elastic: ElasticReport?
}
