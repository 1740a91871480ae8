import PosternOps

/// One app's requests and errors as the emperor's status page counts them: over the app's whole
/// life under this emperor, across restarts, crashes, idle exits and reloads in place, each of
/// which starts the app's own counters again. Pure: fed the app's ``AppReport``s and its exits.
///
/// The app reports once a second, so what it served after its last report and before it ended
/// is not counted (at most a second's worth per process).
package struct AppTally: Sendable, Equatable {
    package init() {}

    /// The counts of the app's processes that have ended, or whose counters started again.
    package private(set) var pastRequests = 0
    package private(set) var pastErrors = 0
    /// The running process's last report; `nil` while it has none (not yet, or no process).
    package private(set) var current: AppReport?

    /// A report from the app's running process. Another `start` (a single process's reload in
    /// place executes the binary anew), or counters lower than the last report's, begin new
    /// counts: the last report's are kept.
    package mutating func take(_ report: AppReport) {
        if let current, report.start != current.start || report.requests < current.requests || report.errors < current.errors {
            retire(current)
        }
        current = report
    }

    /// The app's process ended: its last counts are kept, its workers are gone.
    package mutating func processEnded() {
        if let current { retire(current) }
        current = nil
    }

    private mutating func retire(_ report: AppReport) {
        pastRequests += report.requests
        pastErrors += report.errors
    }

    package var requests: Int { pastRequests + (current?.requests ?? 0) }
    package var errors: Int { pastErrors + (current?.errors ?? 0) }
}
