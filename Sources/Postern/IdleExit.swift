/// `--idle-exit S`: a server that has served no request for S seconds, with none in flight,
/// stops gracefully, so that a manager that starts it on demand (`postern emperor`'s on-demand
/// apps, systemd socket activation) frees its memory until the next connection (uWSGI's
/// `idle`, php-fpm's `pm.process_idle_timeout` for a whole pool). A pure value fed the
/// process's counters: the caller samples them and stops when it says so.
struct IdleExit: Sendable {
    let seconds: Double
    private var requests = -1
    private var since: ContinuousClock.Instant

    init(seconds: Double, now: ContinuousClock.Instant) {
        self.seconds = seconds
        since = now
    }

    var isEnabled: Bool { seconds > 0 }

    /// The counters now; true when the process has been idle for `seconds`.
    mutating func observe(requests: Int, inFlight: Int, now: ContinuousClock.Instant) -> Bool {
        guard isEnabled else { return false }
        if requests != self.requests || inFlight > 0 {
            self.requests = requests
            since = now
            return false
        }
        return now - since >= .milliseconds(Int64(seconds * 1000))
    }
}
