import Logging

#if canImport(Glibc)
import Glibc
#endif

/// sd_notify(3) for a `Type=notify` service, without libsystemd: one datagram per message to the
/// unix socket `NOTIFY_SOCKET` names (a path, or `@name` in the abstract namespace).
///
/// - `READY=1` once the listeners accept (a single process) or the first workers serve (a
///   master); `RELOADING=1` with `MONOTONIC_USEC` when a SIGHUP reload begins, and `READY=1`
///   when the new workers serve; `STOPPING=1` when a graceful stop begins.
/// - `STATUS=` a line for `systemctl status`: workers, requests, connections.
/// - `WATCHDOG=1` every half `WATCHDOG_USEC` when the unit sets `WatchdogSec=` (and
///   `WATCHDOG_PID`, if set, is this process).
///
/// The variables are removed once read, so that workers and scripts do not notify in the
/// service's name.
package final class SystemdNotifier: Sendable {
    private let path: [UInt8]
    /// Half the watchdog timeout, when there is one.
    package let watchdogInterval: Duration?
    /// The variables as systemd set them, for a master that executes itself again (SIGUSR2).
    private let variables: [String: String]

    private init(path: [UInt8], watchdogInterval: Duration?, variables: [String: String]) {
        self.path = path
        self.watchdogInterval = watchdogInterval
        self.variables = variables
    }

    /// Puts the variables back, for the process image that replaces this one.
    package func restoreEnvironment() {
        for (name, value) in variables { setenv(name, value, 1) }
    }

    /// The notifier systemd asked for, or `nil` when it did not.
    package static func fromEnvironment(_ environment: [String: String]) -> SystemdNotifier? {
        defer { for name in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] { unsetenv(name) } }
        guard let socket = environment["NOTIFY_SOCKET"], !socket.isEmpty, socket.hasPrefix("/") || socket.hasPrefix("@") else { return nil }
        var path = Array(socket.utf8)
        if path.first == UInt8(ascii: "@") { path[0] = 0 }  // the abstract namespace
        var watchdog: Duration?
        if let usecText = environment["WATCHDOG_USEC"], let usec = Int64(usecText), usec > 0,
            environment["WATCHDOG_PID"].map({ Int32($0) == getpid() }) ?? true
        {
            watchdog = .microseconds(usec / 2)
        }
        var variables: [String: String] = ["NOTIFY_SOCKET": socket]
        for name in ["WATCHDOG_USEC", "WATCHDOG_PID"] { variables[name] = environment[name] }
        return SystemdNotifier(path: path, watchdogInterval: watchdog, variables: variables)
    }

    /// Sends `state` (newline-separated `KEY=VALUE` lines); false when it could not.
    @discardableResult
    package func send(_ state: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.enumerated() { raw[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count)
        let bytes = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddress in
                sendto(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL), sockaddress, length)
            }
        }
        return sent == bytes.count
    }

    /// `RELOADING=1` with the monotonic time, as `Type=notify-reload` requires.
    package func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        send("RELOADING=1\nMONOTONIC_USEC=\(Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000)")
    }
}
