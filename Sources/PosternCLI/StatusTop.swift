import FoundationEssentials

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `postern top`'s screen: a status page (the JSON of `--status`, docs/status.md) as a table
/// that a terminal refreshes, like uwsgitop for uWSGI's stats server. Pure: two documents and
/// the time between them in, text out. It reads the page as any client would, through the
/// fields it shows (``Document``), not the server's own type.
public struct StatusTop: Sendable {
    /// The fields of the status document the screen shows (snake_case in the JSON).
    struct Document: Decodable, Sendable {
        struct Latency: Decodable, Sendable {
            var p50Seconds: Double
            var p90Seconds: Double
            var p99Seconds: Double
        }
        struct Listener: Decodable, Sendable {
            var `protocol`: String
            var address: String
            var queued: Int
            var maxQueued: Int
            var length: Int
        }
        struct Worker: Decodable, Sendable {
            var pid: Int32
            var rssBytes: Int
            var requests: Int
            var inFlight: Int
            var state: String
        }
        var mode: String
        var pid: Int32
        var startSince: Int
        var listenQueue: Int
        var maxListenQueue: Int
        var listenQueueLen: Int
        var listeners: [Listener]
        var activeWorkers: Int
        var idleWorkers: Int
        var totalWorkers: Int
        var maxActiveWorkers: Int
        var workerRestarts: Int
        var harakiriKills: Int
        var limitRefusals: Int
        var requests: Int
        var inFlight: Int
        var errors: Int
        var timeouts: Int
        var slowRequests: Int
        var latency: Latency
        var workers: [Worker]
    }

    let document: Document
    /// Requests per second since the previous document (nil for the first).
    let requestsPerSecond: Double?

    /// Reads a status page's JSON; throws when it is not one.
    public init(json: Data, previous: StatusTop? = nil, secondsSincePrevious: Double = 0) throws {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        document = try decoder.decode(Document.self, from: json)
        if let previous, secondsSincePrevious > 0, document.requests >= previous.document.requests {
            requestsPerSecond = Double(document.requests - previous.document.requests) / secondsSincePrevious
        } else {
            requestsPerSecond = nil
        }
    }

    /// The screen: a summary, the listeners' accept queues, a line per worker.
    public var text: String {
        let d = document
        var lines: [String] = []
        let rate = requestsPerSecond.map { Self.fixed($0, 1) } ?? "-"
        lines.append(
            "postern \(d.mode) pid \(d.pid), up \(Self.duration(d.startSince)), \(d.totalWorkers) worker\(d.totalWorkers == 1 ? "" : "s") (\(d.activeWorkers) busy, \(d.idleWorkers) idle, most busy \(d.maxActiveWorkers)), restarts \(d.workerRestarts), harakiri \(d.harakiriKills)"
        )
        lines.append(
            "requests \(d.requests)  req/s \(rate)  in flight \(d.inFlight)  errors \(d.errors)  timeouts \(d.timeouts)  slow \(d.slowRequests)  refused \(d.limitRefusals)"
        )
        lines.append(
            "latency p50 \(Self.milliseconds(d.latency.p50Seconds))  p90 \(Self.milliseconds(d.latency.p90Seconds))  p99 \(Self.milliseconds(d.latency.p99Seconds))  listen queue \(d.listenQueue) (most \(d.maxListenQueue)) of \(d.listenQueueLen)"
        )
        lines.append("")
        lines.append(Self.row(["PID", "STATE", "REQUESTS", "IN FLIGHT", "RSS MiB"], widths: [8, 9, 10, 10, 9]))
        for worker in d.workers {
            lines.append(
                Self.row(
                    [
                        String(worker.pid), worker.state, String(worker.requests), String(worker.inFlight),
                        Self.fixed(Double(worker.rssBytes) / 1_048_576, 1),
                    ],
                    widths: [8, 9, 10, 10, 9]))
        }
        if !d.listeners.isEmpty {
            lines.append("")
            lines.append(Self.row(["LISTENER", "QUEUED", "MOST", "LENGTH"], widths: [40, 8, 8, 8]))
            for listener in d.listeners {
                lines.append(
                    Self.row(
                        ["\(listener.protocol) \(listener.address)", String(listener.queued), String(listener.maxQueued), String(listener.length)],
                        widths: [40, 8, 8, 8]))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The first column left-aligned, the others right-aligned, each padded to its width.
    static func row(_ cells: [String], widths: [Int]) -> String {
        zip(cells, widths).enumerated().map { index, pair in
            let (cell, width) = pair
            let padding = String(repeating: " ", count: max(0, width - cell.count))
            return index == 0 ? cell + padding : padding + cell
        }.joined(separator: " ")
    }

    static func duration(_ seconds: Int) -> String {
        if seconds < 60 { return "\(seconds)s" }
        if seconds < 3600 { return "\(seconds / 60)m\(twoDigits(seconds % 60))s" }
        return "\(seconds / 3600)h\(twoDigits(seconds % 3600 / 60))m"
    }

    static func milliseconds(_ seconds: Double) -> String {
        fixed(seconds * 1000, 2) + " ms"
    }

    private static func twoDigits(_ value: Int) -> String {
        value < 10 ? "0\(value)" : String(value)
    }

    /// `value` rounded to `decimals` places, as `%.Nf` prints it (no Foundation here).
    static func fixed(_ value: Double, _ decimals: Int) -> String {
        guard value.isFinite else { return "-" }
        var scale = 1
        for _ in 0..<decimals { scale *= 10 }
        let scaled = Int((abs(value) * Double(scale)).rounded())
        let fraction = String(scaled % scale)
        let sign = value < 0 && scaled != 0 ? "-" : ""
        guard decimals > 0 else { return sign + String(scaled) }
        return sign + String(scaled / scale) + "." + String(repeating: "0", count: decimals - fraction.count) + fraction
    }
}
