import ServiceLifecycle

/// A single serving process's part in `Type=notify`: the status line (and `WATCHDOG=1`, when
/// asked for) at an interval, and `STOPPING=1` as soon as a graceful stop begins. Last in its
/// service group, so the first to hear of the stop. Under `postern emperor`, which reads the
/// same socket, a `report` line goes with the status every second and once more as the stop
/// begins (`AppReport`).
package struct SystemdWatch: Service {
    package let notifier: SystemdNotifier
    package let status: @Sendable () -> String
    /// A reload in place stops the service group too; systemd has heard `RELOADING=1` then.
    package var isReloading: @Sendable () -> Bool
    /// The emperor's line, when the process has one to tell.
    package var report: (@Sendable () -> String)?

    package init(
        notifier: SystemdNotifier, status: @escaping @Sendable () -> String, isReloading: @escaping @Sendable () -> Bool = { false },
        report: (@Sendable () -> String)? = nil
    ) {
        self.notifier = notifier
        self.status = status
        self.isReloading = isReloading
        self.report = report
    }

    package func run() async {
        let interval = min(notifier.watchdogInterval ?? .seconds(10), report != nil ? .seconds(1) : .seconds(10))
        let notifier = self.notifier
        let status = self.status
        let report = self.report
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                notifier.send((notifier.watchdogInterval != nil ? "WATCHDOG=1\n" : "") + "STATUS=" + status() + (report.map { "\n" + $0() } ?? ""))
            }
        }
        // The emperor's last report before the stop or the reload in place, which start the
        // counts again: only the requests still in flight go untold.
        let last = report.map { "\n" + $0() } ?? ""
        if !isReloading() {
            notifier.send("STOPPING=1\nSTATUS=stopping: in-flight requests finish" + last)
        } else if !last.isEmpty {
            notifier.send(String(last.dropFirst()))
        }
    }
}
