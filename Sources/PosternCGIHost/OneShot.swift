/// A value delivered once and awaited once: the hand-off between a script's run and its response.
import NIOCore
import Synchronization

/// The first ``fulfill(_:)`` wins; later ones are ignored. ``value()`` waits for it;
/// ``whenFulfilled(_:)`` calls back with it.
final class OneShot<Value: Sendable>: Sendable {
    private struct State {
        var value: Value?
        var waiters: [CheckedContinuation<Value, Never>] = []
        var callbacks: [@Sendable (Value) -> Void] = []
    }

    private let state = Mutex(State())

    init() {}

    /// Delivers `value`; returns whether it was the first.
    @discardableResult
    func fulfill(_ value: Value) -> Bool {
        let waiting = state.withLock { state -> ([CheckedContinuation<Value, Never>], [@Sendable (Value) -> Void])? in
            guard state.value == nil else { return nil }
            state.value = value
            defer {
                state.waiters = []
                state.callbacks = []
            }
            return (state.waiters, state.callbacks)
        }
        guard let (waiters, callbacks) = waiting else { return false }
        for waiter in waiters { waiter.resume(returning: value) }
        for callback in callbacks { callback(value) }
        return true
    }

    var isFulfilled: Bool { state.withLock { $0.value != nil } }

    func value() async -> Value {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Value? in
                if let value = state.value { return value }
                state.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Calls `callback` with the value once it is delivered (at once, here, if it is).
    func whenFulfilled(_ callback: @escaping @Sendable (Value) -> Void) {
        let ready = state.withLock { state -> Value? in
            if let value = state.value { return value }
            state.callbacks.append(callback)
            return nil
        }
        if let ready { callback(ready) }
    }
}

extension OneShot where Value == Void {
    /// Waits until every one of `events` has happened (`all`) or any one has, for at most
    /// `seconds` (a timer on `loop`; nil: no limit). Returns whether they happened in time.
    static func wait(for events: [OneShot<Void>], all: Bool, seconds: Double?, on loop: any EventLoop) async -> Bool {
        let outcome = OneShot<Bool>()
        let remaining = Countdown(all ? events.count : 1)
        for event in events {
            event.whenFulfilled {
                if remaining.tick() { outcome.fulfill(true) }
            }
        }
        guard !outcome.isFulfilled else { return true }
        let timer = seconds.map { seconds in
            loop.scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) { outcome.fulfill(false) }
        }
        let happened = await outcome.value()
        timer?.cancel()
        return happened
    }
}

/// A count shared by callbacks: ``tick()`` is true for the one that reaches zero.
private final class Countdown: Sendable {
    private let remaining: Atomic<Int>
    init(_ count: Int) { remaining = Atomic(count) }
    func tick() -> Bool { remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 }
}
