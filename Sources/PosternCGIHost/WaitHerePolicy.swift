/// Whether a script's run starts by waiting for the script on the request's own thread
/// (``CGIScriptRun/waitHere(milliseconds:reactor:configuration:errors:)``): a pure value, one per host.
///
/// Waiting there is what makes a small script cheap: no task, no reactor registration, no
/// thread hop; the accept thread reads the output, reaps the script and sends the answer, as
/// fcgiwrap's one thread does for every script. But a script that outlasts the wait has cost
/// an accept thread its whole wait for nothing. So the host remembers how the last 16 waits
/// ended: while at least half finished in time it keeps waiting; otherwise (a root of slow
/// scripts) it goes straight to the run, and tries one wait in every 16 requests to notice when
/// the scripts have become quick again.
struct WaitHerePolicy: Sendable, Equatable {
    /// The last 16 waits, newest in the lowest bit: 1 when the script finished in time. Starts
    /// as if all had.
    private(set) var recent: UInt16 = .max
    /// Requests that went straight to the run since the last wait.
    private(set) var skipped = 0

    static let probeEvery = 16

    /// Whether this request waits; counts it when it does not.
    mutating func shouldWait() -> Bool {
        if recent.nonzeroBitCount >= UInt16.bitWidth / 2 { return true }
        skipped += 1
        guard skipped >= Self.probeEvery else { return false }
        skipped = 0
        return true
    }

    /// How a wait ended.
    mutating func record(finishedInTime: Bool) {
        recent = recent << 1 | (finishedInTime ? 1 : 0)
        if finishedInTime { skipped = 0 }
    }
}
