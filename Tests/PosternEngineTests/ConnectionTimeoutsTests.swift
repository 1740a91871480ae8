import NIOCore
import PosternCore
import PosternEngine
import Testing

/// The connection timeouts as a value: plain calls and a made-up clock, no sockets.
@Suite struct ConnectionTimeoutsTests {
    static let limits = ConnectionTimeouts.Limits(header: .seconds(10), idle: .seconds(60))
    static let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    static func at(_ seconds: Int64) -> NIODeadline { t0 + .seconds(seconds) }

    /// A connection whose first head began when it opened (SCGI, uwsgi, HTTP).
    static func opened() -> ConnectionTimeouts {
        var machine = ConnectionTimeouts(limits: limits, openedAt: t0)
        #expect(machine.headBegan(0, at: t0) == .schedule(at(10)))
        return machine
    }

    @Test func aHeadMustBeCompleteInTimeAndTricklingDoesNotExtendIt() {
        var machine = Self.opened()
        #expect(machine.readRequested(at: Self.t0) == .none)
        for second in 1...9 {
            #expect(machine.bytesRead(at: Self.at(Int64(second))) == .none)
            #expect(machine.readRequested(at: Self.at(Int64(second))) == .none)
        }
        #expect(machine.timerFired(at: Self.at(10)) == .close(.head))
        // Closed: nothing more happens.
        #expect(machine.bytesRead(at: Self.at(11)) == .none)
        #expect(machine.headBegan(1, at: Self.at(11)) == .none)
    }

    @Test func aCompleteRequestWithoutBodyDisarmsEverything() {
        var machine = Self.opened()
        _ = machine.readRequested(at: Self.t0)
        // The armed timer stays; when it fires there is nothing to do and it is not re-armed.
        #expect(machine.headCompleted(0, inputComplete: true) == .none)
        // The application works as long as it likes, even with a read pending (a half-close watch).
        #expect(machine.deadline == nil)
        #expect(machine.timerFired(at: Self.at(10)) == .none)
        #expect(machine.timerFired(at: Self.at(3600)) == .none)
    }

    @Test func aBodyThatStallsWhileTheServerAsksForItIsIdle() {
        var machine = Self.opened()
        _ = machine.bytesRead(at: Self.at(1))
        // Head in at 1 s; the body follows, but nobody asks for it yet: no deadline (backpressure).
        #expect(machine.headCompleted(0, inputComplete: false) == .none)
        #expect(machine.deadline == nil)
        #expect(machine.timerFired(at: Self.at(10)) == .none)
        // The application asks at 100 s: the client has the idle timeout from then, not from 1 s.
        #expect(machine.readRequested(at: Self.at(100)) == .schedule(Self.at(160)))
        // Bytes at 150 s move the deadline later; the armed timer stays and fires early.
        #expect(machine.bytesRead(at: Self.at(150)) == .none)
        #expect(machine.readRequested(at: Self.at(150)) == .none)
        #expect(machine.timerFired(at: Self.at(160)) == .schedule(Self.at(210)))
        #expect(machine.timerFired(at: Self.at(210)) == .close(.idle))
    }

    @Test func aLaterIdleDeadlineDoesNotReArmTheTimer() {
        var machine = Self.opened()
        _ = machine.headCompleted(0, inputComplete: false)
        // The head's timer (10 s) is still armed and earlier: it stays.
        #expect(machine.readRequested(at: Self.at(1)) == .none)
        #expect(machine.timerFired(at: Self.at(10)) == .schedule(Self.at(61)))
        // A read pending again at once after bytes (the usual case): the deadline moves, the timer stays.
        #expect(machine.bytesRead(at: Self.at(2)) == .none)
        #expect(machine.readRequested(at: Self.at(2)) == .none)
        #expect(machine.bytesRead(at: Self.at(3)) == .none)
        #expect(machine.readRequested(at: Self.at(3)) == .none)
        // A repeated ask while one is pending does not push the deadline.
        #expect(machine.readRequested(at: Self.at(50)) == .none)
        #expect(machine.deadline?.0 == Self.at(63))
        #expect(machine.timerFired(at: Self.at(61)) == .schedule(Self.at(63)))
    }

    @Test func aKeptConnectionRestsForTheIdleTimeoutAndItsNextHeadForTheLonger() {
        var machine = Self.opened()
        _ = machine.headCompleted(0, inputComplete: true)
        #expect(machine.requestEnded(0) == .none)
        #expect(machine.isQuiet)
        // HTTP keep-alive: the next head gets max(header, idle) = 60 s from the response's end…
        #expect(machine.headBegan(1, at: Self.at(5), allowance: .seconds(60)) == .none)
        #expect(machine.timerFired(at: Self.at(10)) == .schedule(Self.at(65)))
        // …and with a read pending and nothing arriving, the idle rule says the same.
        _ = machine.readRequested(at: Self.at(5))
        #expect(machine.deadline?.0 == Self.at(65))
        // Trickled head bytes keep the idle rule quiet but not the head's.
        _ = machine.bytesRead(at: Self.at(40))
        _ = machine.readRequested(at: Self.at(40))
        #expect(machine.timerFired(at: Self.at(65)) == .close(.head))
    }

    @Test func anIdleTimeoutShorterThanTheHeaderTimeoutClosesASilentConnection() {
        var machine = ConnectionTimeouts(limits: .init(header: .seconds(30), idle: .seconds(5)), openedAt: Self.t0)
        #expect(machine.headBegan(0, at: Self.t0) == .schedule(Self.at(30)))
        #expect(machine.readRequested(at: Self.t0) == .schedule(Self.at(5)))
        #expect(machine.timerFired(at: Self.at(5)) == .close(.idle))
    }

    @Test func multiplexedRequestsEachHaveTheirHeadDeadlineAndAWorkingOneSuspendsIdle() {
        // FastCGI: the connection opens with no head; the idle rule applies until BEGIN_REQUEST.
        var machine = ConnectionTimeouts(limits: Self.limits, openedAt: Self.t0)
        #expect(machine.readRequested(at: Self.t0) == .schedule(Self.at(60)))
        #expect(machine.headBegan(1, at: Self.at(1)) == .schedule(Self.at(11)))
        _ = machine.headCompleted(1, inputComplete: true)  // request 1 runs
        #expect(machine.deadline == nil)
        #expect(machine.timerFired(at: Self.at(11)) == .none)
        #expect(machine.headBegan(2, at: Self.at(20)) == .schedule(Self.at(30)))
        // Request 2's PARAMS stall: its head deadline closes the connection even though 1 works.
        #expect(machine.timerFired(at: Self.at(30)) == .close(.head))
    }

    @Test func whenTheLastWorkingRequestEndsTheIdleRuleReturns() {
        var machine = ConnectionTimeouts(limits: Self.limits, openedAt: Self.t0)
        _ = machine.headBegan(1, at: Self.t0)
        _ = machine.headCompleted(1, inputComplete: false)
        _ = machine.headBegan(2, at: Self.t0)
        _ = machine.headCompleted(2, inputComplete: true)
        // 1 waits for STDIN that does not come, but 2 works: no deadline.
        _ = machine.readRequested(at: Self.at(1))
        #expect(machine.deadline == nil)
        // 2 ends: 1's silence counts from the last activity, the ask at 1 s.
        #expect(machine.requestEnded(2) == .none)  // the heads' timer (10 s) is earlier
        #expect(machine.timerFired(at: Self.at(10)) == .schedule(Self.at(61)))
        #expect(machine.timerFired(at: Self.at(100)) == .close(.idle))
    }

    @Test func anAbortedOrRefusedRequestEndsItsHeadDeadline() {
        var machine = ConnectionTimeouts(limits: Self.limits, openedAt: Self.t0)
        _ = machine.headBegan(7, at: Self.t0)
        _ = machine.requestEnded(7)
        #expect(machine.isQuiet)
        #expect(machine.deadline == nil)
        #expect(machine.timerFired(at: Self.at(10)) == .none)
        // Input completion for a request that has ended changes nothing.
        #expect(machine.inputCompleted(7) == .none)
        #expect(machine.isQuiet)
    }

    /// Random event sequences: the armed timer is never later than the earliest deadline, and the
    /// timer closes exactly when one has passed.
    @Test func theTimerIsNeverLateWhateverTheEvents() {
        var random = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var machine = ConnectionTimeouts(limits: .init(header: .seconds(3), idle: .seconds(2)), openedAt: Self.t0)
            var now = Self.t0
            var armed: NIODeadline?
            for _ in 0..<60 {
                now = now + .milliseconds(Int64.random(in: 0...1500, using: &random))
                let request = Int.random(in: 0...3, using: &random)
                let action: ConnectionTimeouts.Action
                var fired = false
                switch Int.random(in: 0...7, using: &random) {
                case 0: action = machine.headBegan(request, at: now)
                case 1: action = machine.headCompleted(request, inputComplete: Bool.random(using: &random))
                case 2: action = machine.inputCompleted(request)
                case 3: action = machine.requestEnded(request)
                case 4: action = machine.readRequested(at: now)
                case 5: action = machine.bytesRead(at: now)
                default:
                    guard let due = armed, due <= now else { continue }
                    armed = nil
                    fired = true
                    action = machine.timerFired(at: now)
                }
                switch action {
                case .none: break
                case .schedule(let due): armed = due
                case .close:
                    #expect(fired)
                    #expect(machine.deadline.map { $0.0 <= now } == true)
                    armed = nil
                }
                if case .close = action { break }
                if fired, case .close = action {
                } else if fired {
                    #expect(machine.deadline.map { $0.0 > now } ?? true)
                }
                if let (due, _) = machine.deadline {
                    #expect(armed != nil && armed! <= due, "the timer would fire late")
                }
            }
        }
    }
}
