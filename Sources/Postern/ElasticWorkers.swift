import PosternCore

/// `--workers-min N --workers-max M`: the master's worker count follows the load, decided once
/// a second as a pure value from what it measures (each worker's CPU time over that second, the
/// listening sockets' accept queues), as php-fpm's `pm = dynamic` and uWSGI's `cheaper` do.
///
/// A worker serves many requests at once (an app that awaits holds no thread), so "a request in
/// flight" says nothing of need: a worker is busy when it used at least 80 % of a core, or when
/// the app blocked one of its event loops (a synchronous call; the master passes such a worker
/// as a whole core), and more workers are needed when every worker is busy or connections wait
/// in an accept queue throughout a second.
///
/// - **Grow**: in a second when every worker was busy, or when the accept queue was never empty
///   (the "not empty for a second": a connection or two caught in one sample is not a
///   shortage), workers are added: 1, then 2, 4, … in each following second it
///   lasts (php-fpm's doubling spawn rate, at most 32 at once), up to the maximum.
/// - **Shrink**: when, for `--worker-idle-exit` seconds, nothing was queued and the workers'
///   CPU time would have fitted in one worker fewer at 60 % each, one retires (gracefully: its
///   requests finish), down to the minimum; then the time starts again. The margin between 60 %
///   and 80 % keeps a steady load from adding and retiring a worker in turn.
struct ElasticWorkers: Sendable {
    let minimum: Int
    let maximum: Int
    let idleExit: Duration
    private(set) var spawnRate = 1
    private var windowStart: ContinuousClock.Instant
    /// The most CPU (in cores) and the most connections queued in one second since `windowStart`.
    private var peakLoad = 0.0
    private var peakQueued = 0

    /// A worker at this share of a core is busy.
    static let busyShare = 0.8
    /// The share each remaining worker may have after a shrink.
    static let shrinkShare = 0.6

    enum Decision: Equatable, Sendable {
        case keep
        /// Workers to add, and why.
        case grow(Int, String)
        case shrink(String)
    }

    init(minimum: Int, maximum: Int, idleExit: Double, now: ContinuousClock.Instant) {
        self.minimum = minimum
        self.maximum = maximum
        self.idleExit = .milliseconds(Int64(idleExit * 1000))
        windowStart = now
    }

    var isEnabled: Bool { maximum > minimum }

    /// One second: `workers` (the current count), each worker's CPU time over it (in cores; a
    /// worker not measured yet counts as 0), and the fewest and the most connections seen
    /// waiting in its samples.
    mutating func observe(workers: Int, cpu: [Double], queued: (least: Int, most: Int), now: ContinuousClock.Instant) -> Decision {
        guard isEnabled else { return .keep }
        let load = cpu.reduce(0, +)
        let busy = cpu.filter { $0 >= Self.busyShare }.count
        let saturated = queued.least > 0 || busy >= workers
        guard !saturated else {
            // At the maximum the load goes on: the time to shrink starts after it.
            guard workers < maximum else {
                restart(now)
                return .keep
            }
            let count = min(spawnRate, maximum - workers)
            spawnRate = min(spawnRate * 2, 32)
            restart(now)
            let reason =
                queued.least > 0
                ? "connections waiting to be accepted for a second (\(queued.least)–\(queued.most))"
                : "every worker busy (\(Self.percent(load / Double(workers))) of a core each)"
            return .grow(count, reason)
        }
        spawnRate = 1
        peakLoad = max(peakLoad, load)
        peakQueued = max(peakQueued, queued.most)
        guard now - windowStart >= idleExit else { return .keep }
        defer { restart(now) }
        guard workers > minimum, peakQueued == 0, peakLoad <= Self.shrinkShare * Double(workers - 1) else { return .keep }
        return .shrink("at most \(Self.percent(peakLoad)) of a core used for --worker-idle-exit \(idleExit.secondsText) s")
    }

    private mutating func restart(_ now: ContinuousClock.Instant) {
        windowStart = now
        peakLoad = 0
        peakQueued = 0
    }

    private static func percent(_ share: Double) -> String { "\(Int((share * 100).rounded())) %" }
}
