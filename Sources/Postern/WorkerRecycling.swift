import Logging
import PosternOps

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `--max-worker-rss` and `--max-worker-lifetime`: a worker past either drains and leaves (the
/// master replaces it at once), as `--max-requests` does; uWSGI's `reload-on-rss` and
/// `max-worker-lifetime`, gunicorn's `max_requests` for memory that grows.
///
/// Checked once a second, off the request path: a request costs nothing more.
struct WorkerRecycling: Sendable {
    /// Resident memory limit in bytes; 0: none.
    var maxResidentBytes: Int
    /// Seconds a worker may serve; 0: for ever.
    var maxLifetimeSeconds: Double

    var isEnabled: Bool { maxResidentBytes > 0 || maxLifetimeSeconds > 0 }

    /// Why the worker should leave now, or `nil`.
    func reason(residentBytes: Int, age: Duration) -> String? {
        if maxResidentBytes > 0, residentBytes > maxResidentBytes {
            return "resident memory \(residentBytes >> 20) MiB is over --max-worker-rss \(maxResidentBytes >> 20) MiB"
        }
        if maxLifetimeSeconds > 0, age >= .milliseconds(Int64(maxLifetimeSeconds * 1000)) {
            return "served for --max-worker-lifetime \(maxLifetimeSeconds) s"
        }
        return nil
    }

    /// Checks once a second until a limit is passed, then logs and asks this process to drain
    /// (SIGTERM to itself, the graceful stop every signal path uses).
    func watch(logger: Logger) async {
        let started = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            if let reason = reason(residentBytes: ResidentMemory.ofThisProcess(), age: .now - started) {
                logger.notice("\(reason); draining and leaving")
                kill(getpid(), SIGTERM)
                return
            }
        }
    }
}
