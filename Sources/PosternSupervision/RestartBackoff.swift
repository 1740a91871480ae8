/// How long a supervisor waits before it starts a child that keeps crashing again: `start`,
/// doubled with each crash in a row, never more than `maximum` (uWSGI's Emperor throttle and
/// systemd's `RestartSec` with `RestartSteps` work the same way). A pure value: the caller
/// counts the crashes and decides when a run of them is over.
package struct RestartBackoff: Equatable, Sendable {
    package var start: Duration
    package var maximum: Duration

    package init(start: Duration, maximum: Duration) {
        self.start = start
        self.maximum = maximum
    }

    /// The delay before the next start after `crashes` crashes in a row (1 is the first).
    package func delay(afterCrashes crashes: Int) -> Duration {
        guard crashes > 0 else { return .zero }
        return min(start * (1 << min(crashes - 1, 16)), maximum)
    }
}
