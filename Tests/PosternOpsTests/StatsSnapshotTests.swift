// The status page's percentiles, without a process: estimates inside the bucket that holds
// them, as Prometheus's histogram_quantile computes them.
import Postern
import PosternOps
import Testing

@Suite("Latency percentiles from the histogram")
struct StatsSnapshotTests {
    static func snapshot(_ latencies: [Double]) -> StatsSnapshot {
        var snapshot = StatsSnapshot()
        for latency in latencies {
            let index = StatsSnapshot.latencyBounds.firstIndex { latency <= $0 } ?? StatsSnapshot.latencyBounds.count
            snapshot.latencyBuckets[index] += 1
            snapshot.latencySumSeconds += latency
            snapshot.requests += 1
        }
        return snapshot
    }

    @Test("ten requests between 50 and 100 µs: the median is interpolated to 75 µs, not the bucket's 100 µs bound")
    func interpolatedInsideTheBucket() {
        let snapshot = Self.snapshot(Array(repeating: 0.00006, count: 10))
        #expect(abs(snapshot.latencyPercentile(0.5) - 0.000075) < 1e-12)
        #expect(abs(snapshot.latencyPercentile(0.9) - 0.000095) < 1e-12)
        #expect(snapshot.latencyPercentile(0.5) > 0.00005 && snapshot.latencyPercentile(0.99) <= 0.0001)
    }

    @Test("a slow tail moves p99, not p50; nothing, 0; past the last bound, 60 s")
    func tailAndEdges() {
        let snapshot = Self.snapshot(Array(repeating: 0.00004, count: 98) + [0.3, 0.4])
        #expect(snapshot.latencyPercentile(0.5) <= 0.00005)
        #expect(snapshot.latencyPercentile(0.99) > 0.25 && snapshot.latencyPercentile(0.99) <= 0.5)
        #expect(StatsSnapshot().latencyPercentile(0.5) == 0)
        #expect(Self.snapshot([120]).latencyPercentile(0.5) == 60)
    }
}
