#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One process's request counters at a moment: what a worker reports to its master and what
/// the status endpoint sums and shows. Counters only grow; `inFlight` and `abandonedTasks` are
/// gauges.
public struct StatsSnapshot: Codable, Sendable, Equatable {
    /// Upper bounds (seconds) of the latency histogram's buckets, 1-2.5-5 steps from 25 µs (a
    /// gateway's own hello is tens of µs) to 60 s; the last bucket is open.
    public static let latencyBounds: [Double] = [
        0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
        1, 2.5, 5, 10, 30, 60,
    ]

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
    /// Requests reported by `--slow-log` while they ran.
    public var slowRequests = 0
    /// Connections turned away over `--max-connections`.
    public var limitRefusals = 0
    /// TLS listeners' handshakes: completed, and failed (a plaintext client, a certificate
    /// refused, none given).
    public var tlsHandshakes = 0
    public var tlsHandshakeFailures = 0
    /// Handshakes that resumed a session from a ticket the server issued (``TLSTicketKeys``):
    /// the rest of `tlsHandshakes` were full.
    public var tlsSessionsResumed = 0
    /// When the certificate the TLS listeners serve expires, seconds since the epoch (a gauge:
    /// the earliest over the live processes, which may serve different ones during a reload);
    /// `nil` without TLS.
    public var tlsCertificateNotAfter: Int?
    public var latencyBuckets = [Int](repeating: 0, count: StatsSnapshot.latencyBounds.count + 1)
    public var latencySumSeconds = 0.0
    /// A worker's report for `--harakiri` (not summed): when it was written (seconds since the
    /// epoch), its oldest request in flight and how long that had run, and how long its
    /// slowest event loop had not answered a heartbeat.
    public var reportedAt: Double?
    public var oldestRequest: String?
    public var oldestRequestSeconds: Double?
    public var eventLoopStallSeconds: Double?

    public init() {}

    /// Lenient: a report written by another version of the binary (a worker still running
    /// through an upgrade) lacks the fields added since, which then read as zero.
    public init(from decoder: any Decoder) throws {
        let values = try decoder.container(keyedBy: CodingKeys.self)
        pid = try values.decodeIfPresent(Int32.self, forKey: .pid) ?? 0
        requests = try values.decodeIfPresent(Int.self, forKey: .requests) ?? 0
        inFlight = try values.decodeIfPresent(Int.self, forKey: .inFlight) ?? 0
        byProtocol = try values.decodeIfPresent([String: Int].self, forKey: .byProtocol) ?? [:]
        byStatus = try values.decodeIfPresent([String: Int].self, forKey: .byStatus) ?? [:]
        errors = try values.decodeIfPresent(Int.self, forKey: .errors) ?? 0
        timeouts = try values.decodeIfPresent(Int.self, forKey: .timeouts) ?? 0
        abandonedTasks = try values.decodeIfPresent(Int.self, forKey: .abandonedTasks) ?? 0
        slowRequests = try values.decodeIfPresent(Int.self, forKey: .slowRequests) ?? 0
        limitRefusals = try values.decodeIfPresent(Int.self, forKey: .limitRefusals) ?? 0
        tlsHandshakes = try values.decodeIfPresent(Int.self, forKey: .tlsHandshakes) ?? 0
        tlsHandshakeFailures = try values.decodeIfPresent(Int.self, forKey: .tlsHandshakeFailures) ?? 0
        tlsSessionsResumed = try values.decodeIfPresent(Int.self, forKey: .tlsSessionsResumed) ?? 0
        tlsCertificateNotAfter = try values.decodeIfPresent(Int.self, forKey: .tlsCertificateNotAfter)
        latencyBuckets = try values.decodeIfPresent([Int].self, forKey: .latencyBuckets) ?? latencyBuckets
        latencySumSeconds = try values.decodeIfPresent(Double.self, forKey: .latencySumSeconds) ?? 0
        reportedAt = try values.decodeIfPresent(Double.self, forKey: .reportedAt)
        oldestRequest = try values.decodeIfPresent(String.self, forKey: .oldestRequest)
        oldestRequestSeconds = try values.decodeIfPresent(Double.self, forKey: .oldestRequestSeconds)
        eventLoopStallSeconds = try values.decodeIfPresent(Double.self, forKey: .eventLoopStallSeconds)
    }

    /// Adds another process's counters (gauges included: they are summed over live processes).
    public mutating func add(_ other: StatsSnapshot, gauges: Bool = true) {
        requests += other.requests
        for (key, value) in other.byProtocol { byProtocol[key, default: 0] += value }
        for (key, value) in other.byStatus { byStatus[key, default: 0] += value }
        errors += other.errors
        timeouts += other.timeouts
        slowRequests += other.slowRequests
        limitRefusals += other.limitRefusals
        tlsHandshakes += other.tlsHandshakes
        tlsHandshakeFailures += other.tlsHandshakeFailures
        tlsSessionsResumed += other.tlsSessionsResumed
        for index in latencyBuckets.indices where index < other.latencyBuckets.count {
            latencyBuckets[index] += other.latencyBuckets[index]
        }
        latencySumSeconds += other.latencySumSeconds
        if gauges {
            inFlight += other.inFlight
            abandonedTasks += other.abandonedTasks
            if let notAfter = other.tlsCertificateNotAfter { tlsCertificateNotAfter = min(tlsCertificateNotAfter ?? notAfter, notAfter) }
        }
    }

    /// The latency below which `fraction` of the requests finished, estimated as Prometheus's
    /// `histogram_quantile` does: found in the bucket that reaches it, then interpolated linearly
    /// between that bucket's bounds (the first bucket starts at 0). In the open last bucket the
    /// answer is its lower bound, 60 s. 0 with no requests.
    public func latencyPercentile(_ fraction: Double) -> Double {
        let total = latencyBuckets.reduce(0, +)
        guard total > 0 else { return 0 }
        let rank = Double(total) * fraction
        var seen = 0
        for (index, count) in latencyBuckets.enumerated() where count > 0 {
            if Double(seen + count) >= rank {
                guard index < Self.latencyBounds.count else { return Self.latencyBounds.last! }
                let lower = index == 0 ? 0 : Self.latencyBounds[index - 1]
                let upper = Self.latencyBounds[index]
                return lower + (upper - lower) * max(0, rank - Double(seen)) / Double(count)
            }
            seen += count
        }
        return Self.latencyBounds.last!
    }

    /// The bucket index for a latency in seconds.
    package static func bucket(for seconds: Double) -> Int {
        latencyBounds.firstIndex { seconds <= $0 } ?? latencyBounds.count
    }
}
