import ServiceLifecycle

/// A single serving process's part in `Type=notify`: the status line (and `WATCHDOG=1`, when
/// asked for) at an interval, and `STOPPING=1` as soon as a graceful stop begins. Last in its
/// service group, so the first to hear of the stop.
package struct SystemdWatch: Service {
    package let notifier: SystemdNotifier
    package let status: @Sendable () -> String
    /// A reload in place stops the service group too; systemd has heard `RELOADING=1` then.
    package var isReloading: @Sendable () -> Bool

    package init(notifier: SystemdNotifier, status: @escaping @Sendable () -> String, isReloading: @escaping @Sendable () -> Bool = { false }) {
        self.notifier = notifier
        self.status = status
        self.isReloading = isReloading
    }

    package func run() async {
        let interval = notifier.watchdogInterval ?? .seconds(10)
        let notifier = self.notifier
        let status = self.status
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                notifier.send((notifier.watchdogInterval != nil ? "WATCHDOG=1\n" : "") + "STATUS=" + status())
            }
        }
        if !isReloading() { notifier.send("STOPPING=1\nSTATUS=stopping: in-flight requests finish") }
    }
}
