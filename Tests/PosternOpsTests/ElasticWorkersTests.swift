// `--workers-min`/`--workers-max`: the decision as a pure value with a fake clock, and live: a
// master growing under load and shrinking after it.
import Foundation
import PosternOps
import PosternTestSupport
import Testing

@testable import Postern

@Suite("Elastic workers")
struct ElasticWorkersTests {
    let t0 = ContinuousClock.now

    @Test("every worker busy (80 % of a core) or connections waiting: 1 more, then 2, 4 … each second it lasts, up to the maximum")
    func grow() {
        var elastic = ElasticWorkers(minimum: 1, maximum: 8, idleExit: 10, now: t0)
        var workers = 1
        var added: [Int] = []
        for second in 1...6 {
            let decision = elastic.observe(workers: workers, cpu: Array(repeating: 0.95, count: workers), queued: (0, 0), now: t0 + .seconds(second))
            if case .grow(let count, _) = decision {
                added.append(count)
                workers += count
            }
        }
        #expect(added == [1, 2, 4])
        #expect(workers == 8)
        // One worker below 80 %: not every worker is busy.
        var partly = ElasticWorkers(minimum: 1, maximum: 4, idleExit: 10, now: t0)
        #expect(partly.observe(workers: 2, cpu: [0.95, 0.5], queued: (0, 0), now: t0 + .seconds(1)) == .keep)
        // Waiting connections count even when the workers use no CPU (a blocked, synchronous app).
        var blocked = ElasticWorkers(minimum: 1, maximum: 4, idleExit: 10, now: t0)
        #expect(
            blocked.observe(workers: 2, cpu: [0, 0], queued: (2, 5), now: t0 + .seconds(1)) == .grow(1, "connections waiting to be accepted for a second (2–5)")
        )
        // A connection caught in one sample of the second is no shortage.
        var brief = ElasticWorkers(minimum: 1, maximum: 4, idleExit: 10, now: t0)
        #expect(brief.observe(workers: 2, cpu: [0, 0], queued: (0, 1), now: t0 + .seconds(1)) == .keep)
    }

    @Test("one fewer when the CPU used would have fitted in one worker fewer at 60 % for --worker-idle-exit; down to the minimum")
    func shrink() {
        var elastic = ElasticWorkers(minimum: 2, maximum: 6, idleExit: 3, now: t0)
        var workers = 5
        var decisions: [Int] = []
        for second in 1...20 {
            if case .shrink = elastic.observe(workers: workers, cpu: Array(repeating: 0.1, count: workers), queued: (0, 0), now: t0 + .seconds(second)) {
                decisions.append(second)
                workers -= 1
            }
        }
        #expect(workers == 2)
        #expect(decisions == [3, 6, 9])
        // Three workers at 50 % (1.5 cores) would be two at 75 %: kept.
        var steady = ElasticWorkers(minimum: 1, maximum: 4, idleExit: 3, now: t0)
        for second in 1...10 { #expect(steady.observe(workers: 3, cpu: [0.5, 0.5, 0.5], queued: (0, 0), now: t0 + .seconds(second)) == .keep) }
        // A queued connection in the window: kept.
        var queued = ElasticWorkers(minimum: 1, maximum: 4, idleExit: 3, now: t0)
        _ = queued.observe(workers: 4, cpu: [0, 0, 0, 0], queued: (0, 2), now: t0 + .seconds(1))
        #expect(queued.observe(workers: 4, cpu: [0, 0, 0, 0], queued: (0, 0), now: t0 + .seconds(2)) == .keep)
        // Not elastic when the bounds are equal.
        var fixed = ElasticWorkers(minimum: 2, maximum: 2, idleExit: 1, now: t0)
        #expect(fixed.observe(workers: 2, cpu: [1, 1], queued: (9, 9), now: t0 + .seconds(5)) == .keep)
        // Saturated at the maximum: the time to shrink starts once the load stops.
        var atMaximum = ElasticWorkers(minimum: 1, maximum: 3, idleExit: 3, now: t0)
        for second in 1...10 { _ = atMaximum.observe(workers: 3, cpu: [1, 1, 1], queued: (0, 0), now: t0 + .seconds(second)) }
        #expect(atMaximum.observe(workers: 3, cpu: [0, 0, 0], queued: (0, 0), now: t0 + .seconds(11)) == .keep)
        #expect(atMaximum.observe(workers: 3, cpu: [0, 0, 0], queued: (0, 0), now: t0 + .seconds(13)) != .keep)
    }

    @Test("a worker's CPU ticks from its stat line, whatever its command's name holds")
    func statLine() {
        let line = Array("1234 (post (ern) x) S 1 1234 1234 0 -1 4194560 1536 0 0 0 250 37 0 0 20 0 3 0 100 1000 200".utf8)
        #expect(ProcessCPU.parse(line[...]) == 287)
        #expect(ProcessCPU.ticks(of: getpid()) != nil)
    }

    @Test("bounds outside --workers are refused")
    func bounds() async throws {
        for arguments in [
            ["--workers", "2", "--workers-min", "3"], ["--workers", "3", "--workers-max", "2"], ["--workers-max", "2", "--worker-idle-exit", "0"],
        ] {
            let result = try await PosternCommand.run(["serve"] + arguments + ["--check-config"])
            #expect(result.status == 64 && result.error.contains("--workers-min must be from 1 to --workers"), "\(arguments): \(result)")
        }
    }
}

extension Ops {
    /// Live, with the other operations suites (one at a time: real workers and load).
    @Suite("Elastic workers, live", .serialized)
    struct ElasticWorkersLiveTests {
        @Test("live: one worker grows to --workers-max under load, and shrinks back to --workers-min after it")
        func live() async throws {
            let server = try await OpsServer.start(
                "elastic", ["--workers", "1", "--workers-max", "3", "--worker-idle-exit", "2"])
            defer { server.process.stop() }
            #expect(await eventually { (try? await server.workerPIDs().count) == 1 })
            let status = try await server.status()
            #expect((status["elastic"] as? [String: Any])?["workers_max"] as? Int == 3, "\(status)")
            // Eight clients of requests that block their thread for 100 ms (a synchronous app):
            // the worker's event loops are blocked, though its CPU is idle.
            let load = Load(port: server.port, clients: 8, target: "/block?ms=100")
            let grew = await eventually(20) { (try? await server.workerPIDs().count) == 3 }
            let result = await load.finish()
            #expect(grew, "\(server.process.output)")
            #expect(result.failed == 0, "\(result)")
            #expect(server.process.output.contains("elastic: every worker busy"))
            // Idle: back to one, one at a time, each retiring gracefully.
            #expect(await eventually(20) { (try? await server.workerPIDs().count) == 1 }, "\(server.process.output)")
            let elastic = try #require(try await server.status()["elastic"] as? [String: Any])
            // At least the two it grew by, and as many retired as were added. More than two
            // when a second of short blocks (100 ms, under the 200 ms that marks a worker
            // stalled) looked idle and one worker retired mid-load, then came back (seen once on
            // the static build).
            let grown = elastic["grown"] as? Int ?? 0
            #expect(grown >= 2 && elastic["shrunk"] as? Int == grown, "\(elastic)")
            #expect((elastic["last_decision"] as? String)?.hasPrefix("shrink: ") == true)
            #expect(await server.get("/hello").status == 200)
        }
    }
}
