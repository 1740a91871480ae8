/// Bounds the scripts running at once; excess requests wait in FIFO order, then give up (503).
import Synchronization

/// A counting semaphore with a bounded wait. ``acquire(waitingAtMost:)`` returns `false` when no
/// slot freed up in time (the host answers 503); every `true` must be paired with ``release()``.
public final class CGIConcurrencyLimiter: Sendable {
    private struct State {
        var available: Int
        var nextID = 0
        var waiters: [(id: Int, continuation: CheckedContinuation<Bool, Never>)] = []
    }

    private let state: Mutex<State>

    public init(slots: Int) {
        state = Mutex(State(available: max(1, slots)))
    }

    public var availableSlots: Int { state.withLock { $0.available } }

    public func acquire(waitingAtMost seconds: Double) async -> Bool {
        let id = state.withLock { state -> Int? in
            if state.available > 0 {
                state.available -= 1
                return nil
            }
            state.nextID += 1
            return state.nextID
        }
        guard let id else { return true }
        let timer = Task {
            try? await Task.sleep(for: .seconds(seconds))
            self.giveUp(id)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            let immediate = state.withLock { state -> Bool in
                if state.available > 0 {
                    state.available -= 1
                    return true
                }
                state.waiters.append((id, continuation))
                return false
            }
            if immediate { continuation.resume(returning: true) }
        }
    }

    public func release() {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            if state.waiters.isEmpty {
                state.available += 1
                return nil
            }
            return state.waiters.removeFirst().continuation
        }
        waiter?.resume(returning: true)
    }

    private func giveUp(_ id: Int) {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index).continuation
        }
        waiter?.resume(returning: false)
    }
}
