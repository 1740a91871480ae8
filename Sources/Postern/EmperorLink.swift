import CPosternSocket
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// An app started by `postern emperor` (its pid in `POSTERN_EMPEROR`) leaves with its emperor,
/// as a worker leaves with its master: SIGTERM (a graceful stop) when the emperor ends, even by
/// SIGKILL, and at once if it is already gone. Its workers watch it in turn, not the emperor.
package enum EmperorLink {
    package static let key = "POSTERN_EMPEROR"

    /// Whether this process was started by an emperor, which then reads an ``AppReport`` beside
    /// its notifications.
    static var isUnderEmperor: Bool { getenv(key) != nil }

    /// Arms the parent-death signal when `environment` names an emperor; false when that emperor
    /// is no longer this process's parent (the app must leave).
    static func watchEmperor(_ environment: [String: String], logger: Logger) -> Bool {
        guard let text = environment[key], let emperor = pid_t(text) else { return true }
        // Set again by each image: a reload in place executes the binary anew.
        _ = postern_set_parent_death_signal(SIGTERM)
        guard getppid() == emperor else {
            logger.error("the emperor (pid \(emperor)) is gone; this app leaves")
            return false
        }
        return true
    }
}
