// The connection timeouts fuzz target: ConnectionTimeouts driven by arbitrary event sequences on a
// made-up clock, with its promises checked after every event.
import NIOCore
import PosternCore
import PosternEngine

public enum ConnectionTimeoutsFuzzTarget {
    /// Reads the input as the limits (2 bytes) and then (event, argument) pairs; traps when a
    /// promise breaks:
    /// - the armed timer is never later than the earliest deadline (a deadline is never missed);
    /// - the machine closes only when its timer fires and a deadline has passed;
    /// - a timer that fires with a deadline passed always closes;
    /// - after the close nothing asks for a timer again.
    public static func run(_ data: UnsafeBufferPointer<UInt8>) {
        guard data.count >= 2 else { return }
        let limits = ConnectionTimeouts.Limits(
            header: .milliseconds(Int64(data[0]) * 10 + 1), idle: .milliseconds(Int64(data[1]) * 10 + 1))
        var now = NIODeadline.uptimeNanoseconds(1_000_000_000)
        var machine = ConnectionTimeouts(limits: limits, openedAt: now)
        var armed: NIODeadline?
        var closed = false

        /// Checks what the machine asked for, and its promise about the armed timer.
        func perform(_ action: ConnectionTimeouts.Action, fired: Bool, at now: NIODeadline) {
            switch action {
            case .none:
                break
            case .schedule(let due):
                precondition(!closed, "a timer asked for after the close")
                armed = due
            case .close:
                precondition(fired && !closed, "a close that no timer asked for")
                precondition(machine.deadline.map { $0.0 <= now } == true, "a close before any deadline")
                closed = true
            }
            if !closed, let (due, _) = machine.deadline {
                precondition(armed.map { $0 <= due } == true, "the timer would fire after the deadline")
            }
        }

        /// The event loop runs the armed timer before anything that happens after it is due.
        func fireIfDue(_ now: NIODeadline) {
            guard let due = armed, due <= now else { return }
            armed = nil
            let passed = machine.deadline.map { $0.0 <= due } ?? false
            let action = machine.timerFired(at: due)
            if passed && !closed {
                guard case .close = action else { preconditionFailure("a deadline passed and the timer did not close") }
            }
            perform(action, fired: true, at: due)
        }

        var index = 2
        while index + 1 < data.count, !closed {
            let event = data[index]
            let argument = data[index + 1]
            index += 2
            now = now + .milliseconds(Int64(argument >> 2) * 7)
            fireIfDue(now)
            if closed { break }
            let request = Int(argument & 3)
            switch event % 7 {
            case 0: perform(machine.headBegan(request, at: now, allowance: event & 0x80 != 0 ? max(limits.header, limits.idle) : nil), fired: false, at: now)
            case 1: perform(machine.headCompleted(request, inputComplete: event & 0x80 != 0), fired: false, at: now)
            case 2: perform(machine.inputCompleted(request), fired: false, at: now)
            case 3: perform(machine.requestEnded(request), fired: false, at: now)
            case 4: perform(machine.readRequested(at: now), fired: false, at: now)
            case 5: perform(machine.bytesRead(at: now), fired: false, at: now)
            default:
                // Time passes until the timer fires.
                if let due = armed { now = max(now, due) }
                fireIfDue(now)
            }
        }
    }
}
