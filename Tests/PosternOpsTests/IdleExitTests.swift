// `--idle-exit`: the decision as a pure value.
import Testing

@testable import Postern

@Suite("--idle-exit")
struct IdleExitTests {
    @Test("idle when no request came and none is in flight for the whole time; any request or one in flight starts the time again")
    func idle() {
        let t0 = ContinuousClock.now
        var idle = IdleExit(seconds: 2, now: t0)
        let samples: [(requests: Int, inFlight: Int, at: Duration, expected: Bool)] = [
            (0, 0, .zero, false),
            (0, 0, .milliseconds(1900), false),
            (1, 0, .milliseconds(1950), false),  // a request
            (1, 1, .seconds(5), false),  // one in flight
            (1, 0, .seconds(6), false),
            (1, 0, .seconds(8), true),
        ]
        for sample in samples {
            let verdict = idle.observe(requests: sample.requests, inFlight: sample.inFlight, now: t0 + sample.at)
            #expect(verdict == sample.expected, "\(sample)")
        }
        var never = IdleExit(seconds: 0, now: t0)
        let verdict = never.observe(requests: 0, inFlight: 0, now: t0 + .seconds(3600))
        #expect(!verdict)
    }
}
