import Foundation

/// One process's request counters at a moment: what a worker reports to its master and what
/// the status endpoint sums and shows. Counters only grow; `inFlight` and `abandonedTasks` are
/// gauges.
public struct StatsSnapshot: Codable, Sendable, Equatable {
    /// Upper bounds (seconds) of the latency histogram's buckets; the last bucket is open.
    public static let latencyBounds: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

    public var pid: Int32 = 0
    public var requests = 0
    public var inFlight = 0
    public var byProtocol: [String: Int] = [:]
    public var byStatus: [String: Int] = [:]
    /// Responses with a 5xx status.
    public var errors = 0
    /// Requests answered 504 by `--timeout`.
    public var timeouts = 0
    /// Application tasks of timed-out requests that ignored cancellation and still run.
    public var abandonedTasks = 0
    public var latencyBuckets = [Int](repeating: 0, count: StatsSnapshot.latencyBounds.count + 1)
    public var latencySumSeconds = 0.0

    public init() {}

    /// Adds another process's counters (gauges included: they are summed over live processes).
    public mutating func add(_ other: StatsSnapshot, gauges: Bool = true) {
        requests += other.requests
        for (key, value) in other.byProtocol { byProtocol[key, default: 0] += value }
        for (key, value) in other.byStatus { byStatus[key, default: 0] += value }
        errors += other.errors
        timeouts += other.timeouts
        for index in latencyBuckets.indices where index < other.latencyBuckets.count {
            latencyBuckets[index] += other.latencyBuckets[index]
        }
        latencySumSeconds += other.latencySumSeconds
        if gauges {
            inFlight += other.inFlight
            abandonedTasks += other.abandonedTasks
        }
    }

    /// The latency below which `fraction` of the requests finished: the upper bound of the
    /// histogram bucket that reaches it (so an estimate, never an understatement); 0 with no
    /// requests.
    public func latencyPercentile(_ fraction: Double) -> Double {
        let total = latencyBuckets.reduce(0, +)
        guard total > 0 else { return 0 }
        let wanted = Int((Double(total) * fraction).rounded(.up))
        var seen = 0
        for (index, count) in latencyBuckets.enumerated() {
            seen += count
            if seen >= wanted {
                return index < Self.latencyBounds.count ? Self.latencyBounds[index] : Self.latencyBounds.last! * 2
            }
        }
        return Self.latencyBounds.last! * 2
    }

    /// The bucket index for a latency in seconds.
    static func bucket(for seconds: Double) -> Int {
        latencyBounds.firstIndex { seconds <= $0 } ?? latencyBounds.count
    }
}
