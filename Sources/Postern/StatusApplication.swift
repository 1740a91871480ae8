import Foundation
import NIOCore
import PosternCore
import Prometheus

/// The status endpoint (`--status ADDR`), the way php-fpm's status page and uWSGI's stats server
/// are used: `/` (or `/status`) answers JSON, `/metrics` the Prometheus text format (rendered by
/// swift-prometheus). With workers, the numbers are the master's sum over every worker.
struct StatusApplication: Application {
    /// The counters: (sum over the processes, each serving process's own: the live workers, or
    /// this process alone without workers).
    let source: @Sendable () -> (total: StatsSnapshot, workers: [StatsSnapshot])
    let mode: String
    let restarts: @Sendable () -> Int

    func respond(to environ: Environ) async throws -> Response {
        let (total, workers) = source()
        switch environ.pathInfo {
        case "/metrics":
            return Response(
                status: .ok,
                headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(bytes: Self.prometheus(total, workers: workers.count))
            )
        case "/", "/status", "":
            return Response(status: .ok, headers: ["Content-Type": "application/json"], body: ResponseBody(string: json(total, workers)))
        default:
            return .error(.notFound)
        }
    }

    private func json(_ total: StatsSnapshot, _ workers: [StatsSnapshot]) -> String {
        let document = StatusDocument(
            mode: mode,
            pid: ProcessIdentity.pid,
            workerCount: workers.count,
            workerRestarts: restarts(),
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
            workers: workers.map { .init(pid: $0.pid, requests: $0.requests, inFlight: $0.inFlight) }
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return (try? String(decoding: encoder.encode(document), as: UTF8.self)) ?? "{}"
    }

    /// The Prometheus exposition of the counters: a fresh registry per scrape, filled from the
    /// summed snapshot (so the numbers are the whole pool's, not this process's alone).
    static func prometheus(_ total: StatsSnapshot, workers: Int) -> [UInt8] {
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
        registry.makeGauge(descriptor: metric("abandoned_tasks", "", "Timed-out application tasks that ignored cancellation.")).set(Double(total.abandonedTasks))
        registry.makeCounter(descriptor: metric("slow_requests", "total", "Requests reported by --slow-log while they ran.")).increment(by: Int64(total.slowRequests))
        registry.makeGauge(descriptor: metric("workers", "", "Processes serving requests: the live workers, or 1 without --workers.")).set(Double(workers))
        return registry.emitToBuffer() + Array(histogram(total).utf8)
    }

    /// The latency histogram in the Prometheus text format (a histogram: cumulative `_bucket`
    /// lines, `_sum`, `_count`), written here because the registry's histograms record single
    /// observations and these counts are already summed over the processes.
    static func histogram(_ total: StatsSnapshot) -> String {
        let name = "postern_request_duration_seconds"
        var text = "# HELP \(name) Request latency, from the request's start to its response's end.\n# TYPE \(name) histogram\n"
        for (bound, count) in cumulativeBuckets(total) {
            text += "\(name)_bucket{le=\"\(bound.map { "\($0)" } ?? "+Inf")\"} \(count)\n"
        }
        text += "\(name)_sum \(total.latencySumSeconds)\n\(name)_count \(total.latencyBuckets.reduce(0, +))\n"
        return text
    }

    /// (upper bound, requests at or under it), the open last bucket's bound `nil`.
    static func cumulativeBuckets(_ total: StatsSnapshot) -> [(bound: Double?, count: Int)] {
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

/// The JSON status document.
struct StatusDocument: Codable {
    struct Latency: Codable {
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
    struct WorkerEntry: Codable {
        var pid: Int32
        var requests: Int
        var inFlight: Int
    }
    var mode: String
    var pid: Int32
    var workerCount: Int
    var workerRestarts: Int
    var requests: Int
    var inFlight: Int
    var byProtocol: [String: Int]
    var byStatus: [String: Int]
    var errors: Int
    var timeouts: Int
    var abandonedTasks: Int
    var slowRequests: Int
    var latency: Latency
    var workers: [WorkerEntry]
}
