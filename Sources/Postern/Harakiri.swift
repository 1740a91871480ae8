import PosternOps

/// `--harakiri S` (uWSGI's name, php-fpm's `request_terminate_timeout`): what the master reads
/// in a worker's report (``WorkerReporter``) to decide that the worker is stuck and must be
/// killed (SIGKILL) and replaced. A pure judgment, tested without processes.
///
/// A worker is stuck when, as of now:
/// - its oldest request in flight has run longer than S (the report's age added), or
/// - one of its event loops has left a heartbeat unanswered for longer than S (an application
///   that blocks its thread: a synchronous driver, a `sleep`; such a loop also stalls every
///   other connection and task placed on it), or
/// - its reports stopped more than S + 2 s ago (the whole process stopped answering).
///
/// `--timeout` answers such a request's client with 504 first, when it is shorter; harakiri is
/// what ends the work itself, which a task that ignores cancellation or a blocked thread never
/// ends on its own.
struct Harakiri: Sendable {
    let seconds: Double

    /// Why the worker that wrote `report` must go, or nil. `now`: seconds since the epoch.
    func verdict(_ report: StatsSnapshot, now: Double) -> String? {
        guard seconds > 0, let reportedAt = report.reportedAt else { return nil }
        let age = max(0, now - reportedAt)
        if let line = report.oldestRequest, let ran = report.oldestRequestSeconds, ran + age > seconds {
            return "its request \"\(line)\" has run \(Self.format(ran + age)) s"
        }
        if let stall = report.eventLoopStallSeconds, stall > 0, stall + age > seconds {
            let request = report.oldestRequest.map { "; its oldest request: \"\($0)\"" } ?? ""
            return "an event loop has not answered for \(Self.format(stall + age)) s (an application blocking its thread)\(request)"
        }
        if age > seconds + 2 {
            return "it has not reported for \(Self.format(age)) s"
        }
        return nil
    }

    static func format(_ value: Double) -> String {
        String(Double(Int(value * 10)) / 10)
    }
}
