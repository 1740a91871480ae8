import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Whether this serving unit is leaving its balancer (`--drain-delay`): from the stop signal
/// until the graceful stop begins, ``PingResponder`` answers 503 while every other request is
/// still served, so that a health check takes the member out before its listeners close.
///
/// A single process sets it itself. A worker reads it from its master: the master that begins
/// to drain creates `marker` (a file in the directory its workers report to) and each worker's
/// ping sees it, since the workers of one master are one member of the balancer.
package final class DrainState: Sendable {
    private let flag = Atomic<Bool>(false)
    private let marker: String?

    /// - Parameter marker: the file whose presence means the master drains (a worker's).
    package init(marker: String? = nil) {
        self.marker = marker
    }

    package var isDraining: Bool {
        if flag.load(ordering: .relaxed) { return true }
        guard let marker else { return false }
        return access(marker, F_OK) == 0
    }

    package func begin() {
        flag.store(true, ordering: .relaxed)
    }

    /// The file a master creates in its workers' report directory when it begins to drain.
    package static func marker(in directory: String) -> String {
        directory.hasSuffix("/") ? directory + "draining" : directory + "/draining"
    }
}
