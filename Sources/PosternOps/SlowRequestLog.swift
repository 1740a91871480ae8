import Logging
import PosternCore
import PosternEngine
import Synchronization

/// `--slow-log S`: a request still running S seconds after it reached the application is logged
/// while it runs — its request line, the worker's pid and the time so far — as php-fpm's slowlog
/// does; when it ends, its total time is logged too. Only the requests in flight are kept, and
/// their oldest is what a worker reports to its master for `--harakiri` (``oldest()``; with no
/// threshold the table is kept for that alone, and nothing is logged).
public final class SlowRequestLog: Sendable {
    private struct Entry {
        var line: String
        var started: ContinuousClock.Instant
        var reported = false
    }

    package let threshold: Duration?
    private let running = Mutex<[Int: Entry]>([:])
    private let reportedCount = Atomic<Int>(0)

    /// - Parameter seconds: the slow-log threshold; `nil`: keep the table, log nothing.
    public init(seconds: Double?) {
        threshold = seconds.map { .milliseconds(Int64($0 * 1000)) }
    }

    /// The request in flight the longest: its request line and how long it has run.
    package func oldest() -> (line: String, seconds: Double)? {
        let now = ContinuousClock.now
        return running.withLock { running in
            running.values.min { $0.started < $1.started }.map { ($0.line, (now - $0.started).inSeconds) }
        }
    }

    /// Slow requests seen so far (reported while running).
    package var slowRequests: Int { reportedCount.load(ordering: .relaxed) }

    package func began(_ id: Int, _ environ: Environ) {
        let uri = environ["REQUEST_URI"].flatMap { $0.isEmpty ? nil : $0 } ?? environ.scriptName + environ.pathInfo
        let line = "\(environ.requestMethod) \(uri) \(environ["SERVER_PROTOCOL"] ?? "-")"
        running.withLock { $0[id] = Entry(line: line, started: .now) }
    }

    /// The request ended; logs its total time if it was reported as slow.
    package func ended(_ record: RequestRecord, logger: Logger) {
        guard let entry = running.withLock({ $0.removeValue(forKey: record.id) }), entry.reported else { return }
        logger.notice(
            "slow request ended",
            metadata: [
                "request": "\(entry.line)", "status": "\(record.status)", "seconds": "\(Self.seconds(.now - entry.started))",
            ])
    }

    /// Logs each request that has passed the threshold and was not reported yet.
    package func scan(logger: Logger) {
        guard let threshold else { return }
        let now = ContinuousClock.now
        let slow = running.withLock { running -> [(String, Duration)] in
            var found: [(String, Duration)] = []
            for (id, entry) in running where !entry.reported && now - entry.started >= threshold {
                running[id]?.reported = true
                found.append((entry.line, now - entry.started))
            }
            return found
        }
        for (line, elapsed) in slow {
            reportedCount.add(1, ordering: .relaxed)
            logger.warning(
                "slow request, still running",
                metadata: [
                    "request": "\(line)", "seconds": "\(Self.seconds(elapsed))", "pid": "\(ProcessIdentity.pid)",
                ])
        }
    }

    /// Scans until cancelled, four times per threshold (at most every second, at least every 50 ms).
    package func watch(logger: Logger) async {
        guard let threshold else { return }
        let interval = min(max(threshold / 4, .milliseconds(50)), .seconds(1))
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            scan(logger: logger)
        }
    }

    private static func seconds(_ duration: Duration) -> String {
        String(Double(Int(duration.inSeconds * 1000)) / 1000)
    }
}
