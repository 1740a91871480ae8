// The prefork master's decisions (PreforkPolicy), without processes: a fake clock and pids the
// test makes up. What the live tests show with real binaries, each case here shows exactly.
import Foundation
import Testing

@testable import Postern
@testable import PosternSupervision

@Suite("PreforkPolicy")
struct PreforkPolicyTests {
    /// A policy, a clock and made-up pids; performs `.spawn` actions as the master does.
    struct Harness {
        var policy: PreforkPolicy
        var now = ContinuousClock.now
        var nextPID: pid_t = 100
        var log: [PreforkPolicy.Action] = []

        init(workers: Int, bootTimeout: Duration = .seconds(30)) {
            policy = PreforkPolicy(settings: .init(workers: workers, bootTimeout: bootTimeout, gracefulTimeout: .seconds(10)))
        }

        /// Spawns what the actions ask for (recording every action); returns the pids spawned.
        @discardableResult
        mutating func perform(_ actions: [PreforkPolicy.Action]) -> [pid_t] {
            var spawned: [pid_t] = []
            for action in actions {
                log.append(action)
                if case .spawn(let slot, let successor) = action {
                    nextPID += 1
                    spawned.append(nextPID)
                    perform(policy.spawned(nextPID, slot: slot, successor: successor, now: now))
                }
            }
            return spawned
        }

        mutating func advance(_ duration: Duration) -> [pid_t] {
            now += duration
            return perform(policy.tick(now: now))
        }

        mutating func ready(_ pids: [pid_t]) {
            for pid in pids { perform(policy.ready(pid, now: now)) }
        }

        mutating func exit(_ pid: pid_t, _ how: ChildExit, output: String? = nil) -> [PreforkPolicy.Action] {
            let actions = policy.exited(pid, how, output: output, now: now)
            perform(actions)
            return actions
        }

        /// Current workers per slot that are not retiring.
        var live: [pid_t] { policy.workers.filter { $0.value.state != .retiring }.map(\.key).sorted() }
        var terminated: [pid_t] { log.compactMap { if case .terminate(let pid) = $0 { pid } else { nil } } }
        var halted: String? { log.lazy.compactMap { if case .halt(let reason) = $0 { reason } else { nil } }.first }
        var outcomes: [PreforkPolicy.ReloadOutcome] { log.compactMap { if case .reloadFinished(let outcome) = $0 { outcome } else { nil } } }
    }

    /// Starts N workers and makes them ready.
    static func serving(_ workers: Int) -> (Harness, [pid_t]) {
        var harness = Harness(workers: workers)
        let pids = harness.perform(harness.policy.start())
        harness.ready(pids)
        return (harness, pids)
    }

    @Test("a reload retires each old worker only once its successor is ready, one for one")
    func reloadOneForOne() {
        var (h, old) = Self.serving(3)
        let new = h.perform(h.policy.beginReload(now: h.now))
        #expect(new.count == 3)
        #expect(h.terminated.isEmpty, "nothing retired before a successor is ready")
        h.ready([new[0]])
        #expect(h.terminated == [old[0]])
        #expect(h.policy.isReloading)
        h.ready([new[1], new[2]])
        #expect(h.terminated == old)
        #expect(h.outcomes == [.succeeded(generation: 1)])
        #expect(!h.policy.isReloading)
        for pid in old { _ = h.exit(pid, .code(0)) }
        #expect(h.live == new)
        #expect(h.policy.isSettled)
    }

    @Test("a broken binary: the new workers exit, the reload fails, the old workers keep serving, no retry")
    func brokenReload() {
        var (h, old) = Self.serving(2)
        let new = h.perform(h.policy.beginReload(now: h.now))
        let actions = h.exit(new[0], .code(1), output: "dyld: cannot load")
        #expect(h.terminated == [new[1]], "the other successor is stopped; no old worker is")
        guard case .failed(1, let reason)? = h.outcomes.first else {
            Issue.record("no failed outcome: \(actions)")
            return
        }
        #expect(reason.contains("exited (exit 1) before it was ready"))
        #expect(reason.contains("dyld: cannot load"))
        _ = h.exit(new[1], .signal(15))
        #expect(h.live == old)
        #expect(h.advance(.seconds(60)).isEmpty, "a failed reload is not retried")
        #expect(h.policy.isSettled)
    }

    @Test("three broken reloads, then a good one: exactly N workers, whatever the order of exits")
    func brokenReloadsThenGood() {
        var (h, old) = Self.serving(3)
        for _ in 0..<3 {
            let new = h.perform(h.policy.beginReload(now: h.now))
            #expect(new.count == 3)
            // One dies at once; the others are stopped by the failure and exit later.
            _ = h.exit(new[0], .code(1))
            _ = h.advance(.milliseconds(50))
            for pid in new.dropFirst() { _ = h.exit(pid, .signal(15)) }
            #expect(h.live == old)
        }
        let good = h.perform(h.policy.beginReload(now: h.now))
        h.ready(good)
        for pid in old { _ = h.exit(pid, .code(0)) }
        #expect(h.live == good)
        #expect(h.policy.workers.count == 3)
        #expect(h.outcomes.last == .succeeded(generation: 4))
    }

    @Test("a reload during a reload: the first one's booting workers are stopped; never more than N live")
    func reloadDuringReload() {
        var (h, old) = Self.serving(2)
        let first = h.perform(h.policy.beginReload(now: h.now))
        let second = h.perform(h.policy.beginReload(now: h.now))
        #expect(Set(h.terminated) == Set(first))
        #expect(h.live.count == 4, "old and the second successors: \(h.live)")
        h.ready(second)
        #expect(Set(h.terminated) == Set(first + old))
        #expect(h.live == second)
    }

    @Test("a successor not ready within --worker-boot-timeout is killed and fails the reload")
    func bootTimeout() {
        var h = Harness(workers: 1, bootTimeout: .seconds(5))
        let old = h.perform(h.policy.start())
        h.ready(old)
        let new = h.perform(h.policy.beginReload(now: h.now))
        _ = h.advance(.seconds(4))
        #expect(!h.log.contains(.kill(new[0])), "killed before its boot timeout")
        _ = h.advance(.seconds(2))
        #expect(h.log.contains(.kill(new[0])))
        _ = h.exit(new[0], .signal(9))
        guard case .failed(_, let reason)? = h.outcomes.first else {
            Issue.record("no failure")
            return
        }
        #expect(reason.contains("not ready within --worker-boot-timeout"))
        #expect(h.live == old)
    }

    @Test("at start, a configuration error stops the master at once; other crashes after three attempts")
    func haltAtStart() {
        var h = Harness(workers: 2)
        let first = h.perform(h.policy.start())
        _ = h.exit(first[0], .code(64), output: "Error: unknown option '--bogus'")
        #expect(h.halted?.contains("configuration error") == true)
        #expect(h.halted?.contains("unknown option") == true)

        var c = Harness(workers: 1)
        var pid = c.perform(c.policy.start())[0]
        for attempt in 1...3 {
            _ = c.exit(pid, .code(1))
            if attempt < 3 {
                #expect(c.halted == nil)
                let started = c.advance(.seconds(1))
                #expect(started.count == 1, "attempt \(attempt): restarted after its backoff")
                pid = started[0]
            }
        }
        #expect(c.halted?.contains("3 in a row") == true)
    }

    @Test("after a successful start, a crash loop backs off (0.1 s doubling to 10 s) and never halts; a long life resets it")
    func crashLoopBacksOff() throws {
        var (h, pids) = Self.serving(1)
        var pid = pids[0]
        var delays: [Duration] = []
        for _ in 0..<9 {
            _ = h.exit(pid, .signal(11))
            #expect(h.policy.isWaitingForBackoff)
            var waited = Duration.zero
            var started: [pid_t] = []
            while started.isEmpty && waited < .seconds(60) {
                started = h.advance(.milliseconds(50))
                waited += .milliseconds(50)
            }
            try #require(!started.isEmpty, "no restart within 60 s of backoff")
            delays.append(waited)
            pid = started[0]
            h.ready([pid])
            _ = h.advance(.milliseconds(100))
        }
        #expect(h.halted == nil)
        #expect(h.policy.lastCrash?.contains("signal 11") == true, "the status page's crash_loop")
        #expect(delays.first! <= .milliseconds(150))
        #expect(delays.last! >= .seconds(10) && delays.last! <= .milliseconds(10_100), "\(delays)")
        _ = h.advance(.seconds(5))
        #expect(h.policy.crashes == 0 && h.policy.lastCrash == nil, "a worker serving past the crash window ends the loop")
        _ = h.exit(pid, .signal(11))
        #expect(h.advance(.milliseconds(150)).count == 1, "a worker that lived past the crash window resets the backoff")
    }

    @Test("clean exits (--max-requests) and --harakiri kills are replaced at once, not counted as crashes")
    func replacedAtOnce() {
        var (h, pids) = Self.serving(2)
        _ = h.exit(pids[0], .code(0))
        #expect(h.advance(.milliseconds(1)).count == 1)
        h.policy.markKilled(pids[1])
        _ = h.exit(pids[1], .signal(9))
        #expect(h.advance(.milliseconds(1)).count == 1)
        #expect(h.policy.crashes == 0)
    }

    @Test("SIGTTIN and SIGTTOU resize; a reload to a new count ends with exactly that many")
    func resize() {
        var (h, pids) = Self.serving(2)
        let added = h.perform(h.policy.resize(to: 3, now: h.now))
        #expect(added.count == 1)
        h.ready(added)
        _ = h.perform(h.policy.resize(to: 1, now: h.now))
        #expect(Set(h.terminated) == Set([pids[1], added[0]]))
        let new = h.perform(h.policy.beginReload(workers: 4, now: h.now))
        h.ready(new)
        #expect(h.live.count == 4, "\(h.live)")
        #expect(h.policy.workerCount == 4)
    }

    @Test("a stop terminates every worker, kills the rest after the deadline, and starts nothing more")
    func stop() {
        var (h, pids) = Self.serving(2)
        _ = h.exit(pids[0], .signal(11))
        _ = h.perform(h.policy.stop(now: h.now))
        #expect(h.terminated == [pids[1]])
        #expect(h.advance(.seconds(1)).isEmpty, "no start during a stop")
        _ = h.advance(.seconds(15))
        #expect(h.log.contains(.kill(pids[1])))
        _ = h.exit(pids[1], .signal(9))
        #expect(h.policy.isDone)
        #expect(h.perform(h.policy.beginReload(now: h.now)).isEmpty)
    }

    @Test("a successor spawned after its reload failed (another could not start) drains at once; a worker killed for its boot timeout is never made ready")
    func lateSuccessorAndKilledWorker() {
        var (h, old) = Self.serving(2)
        let actions = h.policy.beginReload(now: h.now)
        #expect(actions.filter { if case .spawn(_, true) = $0 { true } else { false } }.count == 2)
        _ = h.policy.spawnFailed(slot: 0, successor: true, reason: "EAGAIN", now: h.now)
        let late: pid_t = 999
        #expect(h.policy.spawned(late, slot: 1, successor: true, now: h.now) == [.terminate(late)])
        #expect(h.policy.workers[late]?.state == .retiring)
        h.ready([late])
        #expect(!h.terminated.contains(old[1]), "an old worker retired for a successor of a failed reload")
        #expect(h.policy.slots.map(\.current) == old.map { Optional($0) })

        var b = Harness(workers: 1, bootTimeout: .seconds(5))
        let slow = b.perform(b.policy.start())
        _ = b.advance(.seconds(6))
        #expect(b.log.contains(.kill(slow[0])))
        b.ready(slow)
        #expect(b.policy.workers[slow[0]]?.state == .booting, "a killed worker was made ready")
    }

    @Test("a worker that exits 0 before it is ready is a crash (backoff), not a clean leave; a spawn that fails at start counts toward giving up")
    func exitBeforeReady() {
        var (h, pids) = Self.serving(1)
        _ = h.exit(pids[0], .code(0))
        let next = h.advance(.milliseconds(1))
        #expect(next.count == 1)
        _ = h.exit(next[0], .code(0))
        #expect(h.advance(.milliseconds(1)).isEmpty, "restarted at once after exiting before it was ready")
        #expect(h.policy.crashes == 1)

        var s = Harness(workers: 1)
        for _ in 0..<3 { _ = s.perform(s.policy.spawnFailed(slot: 0, successor: false, reason: "EMFILE", now: s.now)) }
        #expect(s.halted?.contains("EMFILE") == true)
    }

    @Test("a current worker dying during a reload: its successor takes the slot")
    func currentDiesDuringReload() {
        var (h, old) = Self.serving(2)
        let new = h.perform(h.policy.beginReload(now: h.now))
        _ = h.exit(old[0], .signal(9))
        #expect(h.policy.slots[0].current == new[0])
        h.ready(new)
        #expect(h.outcomes == [.succeeded(generation: 1)])
        #expect(h.terminated == [old[1]])
        _ = h.exit(old[1], .code(0))
        #expect(h.live == new)
    }
}
