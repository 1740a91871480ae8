import Logging

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
            if let reason = reason(residentBytes: Self.residentBytes(), age: .now - started) {
                logger.notice("\(reason); draining and leaving")
                kill(getpid(), SIGTERM)
                return
            }
        }
    }

    /// This process's resident set (the second field of /proc/self/statm, in pages); 0 if unknown.
    static func residentBytes() -> Int {
        residentBytes(at: "/proc/self/statm") ?? 0
    }

    /// Another process's resident set (a master's view of its workers); nil if it is gone.
    static func residentBytes(of pid: Int32) -> Int? {
        residentBytes(at: "/proc/\(pid)/statm")
    }

    private static func residentBytes(at path: String) -> Int? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 128)
        guard fgets(&line, Int32(line.count), file) != nil else { return nil }
        let fields = String(cString: line).split(separator: " ")
        guard fields.count >= 2, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
