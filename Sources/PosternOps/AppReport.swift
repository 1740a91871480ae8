/// What an app started by `postern emperor` tells its emperor once a second, so that the
/// emperor's one status page shows each app's requests, errors and workers without a socket of
/// its own per app: a line of the notification datagram the app already sends to
/// `NOTIFY_SOCKET` (sd_notify(3): newline-separated `KEY=VALUE` assignments; systemd ignores the
/// ones it does not know, so the `X_` prefix marks it as not systemd's). The emperor knows the
/// sender by its credentials (`SO_PASSCRED`), as it knows whose `READY=1` it reads.
///
/// `X_POSTERN_REPORT=start=1796601600123 requests=1200 errors=3 in_flight=1 busy=1 idle=3`
///
/// Counters (`requests`, `errors`: responses with a 5xx status) count from the start of the
/// process image, `start` (milliseconds since the epoch; a master's counters run over every
/// worker it has had); a reload in place executes the binary anew and starts them again, which
/// the emperor's `AppTally` sees by the new `start`. Unknown fields are ignored, so a newer app
/// binary under an older emperor (or the reverse) still reports what both know.
package struct AppReport: Sendable, Equatable {
    package static let key = "X_POSTERN_REPORT"

    /// When the process image started, in milliseconds since the epoch (0: not said).
    package var start = 0
    package var requests = 0
    package var errors = 0
    package var inFlight = 0
    /// Workers with a request in flight, and serving workers without one (a single process is
    /// one worker).
    package var busy = 0
    package var idle = 0

    package init(start: Int = 0, requests: Int = 0, errors: Int = 0, inFlight: Int = 0, busy: Int = 0, idle: Int = 0) {
        self.start = start
        self.requests = requests
        self.errors = errors
        self.inFlight = inFlight
        self.busy = busy
        self.idle = idle
    }

    /// The report of a process's status reading: a master's sum over its workers, or a single
    /// process as its one worker.
    package init(_ reading: StatusReading) {
        self.init(
            start: Int(reading.startTime * 1000), requests: reading.total.requests, errors: reading.total.errors, inFlight: reading.total.inFlight,
            busy: reading.workers.filter { $0.state == "busy" }.count, idle: reading.workers.filter { $0.state == "idle" }.count)
    }

    /// The datagram's line.
    package var line: String {
        "\(Self.key)=start=\(start) requests=\(requests) errors=\(errors) in_flight=\(inFlight) busy=\(busy) idle=\(idle)"
    }

    /// The report in a notification datagram; `nil` when it has none. A known field that is not a
    /// non-negative number makes the whole line void (a report is all or nothing); an unknown
    /// field is skipped, whatever its value.
    package init?(datagram: String) {
        let prefix = Self.key + "="
        guard let line = datagram.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return nil }
        self.init()
        let known: [Substring: WritableKeyPath<AppReport, Int>] = [
            "start": \.start, "requests": \.requests, "errors": \.errors, "in_flight": \.inFlight, "busy": \.busy, "idle": \.idle,
        ]
        for field in line.dropFirst(prefix.count).split(separator: " ") {
            let parts = field.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { return nil }
            guard let key = known[parts[0]] else { continue }
            guard let value = Int(parts[1]), value >= 0 else { return nil }
            self[keyPath: key] = value
        }
    }
}
