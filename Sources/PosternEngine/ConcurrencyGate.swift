import PosternCore
import Synchronization

/// Bounds how many requests run the application at once in this process (`--max-concurrency`).
///
/// Excess requests wait, first come first served, rather than being refused: a front-end has
/// already committed the connection, and the wait counts against the request's `--timeout`.
/// A waiter whose task is cancelled (client gone, timeout) leaves the queue.
public final class ConcurrencyGate: Sendable {
    public let limit: Int
    private let state: Mutex<State>

    private struct State {
        var running = 0
        var nextID = 0
        var waiters: [(id: Int, continuation: CheckedContinuation<Void, any Error>)] = []
    }

    public init(limit: Int) {
        self.limit = max(limit, 1)
        self.state = Mutex(State())
    }

    /// Requests waiting for a slot.
    public var waiting: Int { state.withLock { $0.waiters.count } }

    /// Waits for a slot; throws `CancellationError` if cancelled while waiting.
    public func acquire() async throws {
        let id: Int? = state.withLock { state in
            if state.running < limit {
                state.running += 1
                return nil
            }
            state.nextID += 1
            return state.nextID
        }
        guard let id else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                enum Outcome { case cancelled, acquired, queued }
                let outcome: Outcome = state.withLock { state in
                    if Task.isCancelled { return .cancelled }
                    if state.running < limit {
                        state.running += 1
                        return .acquired
                    }
                    state.waiters.append((id, continuation))
                    return .queued
                }
                switch outcome {
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .acquired: continuation.resume()
                case .queued: break  // release() or the cancellation handler resumes it
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index).continuation
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Frees a slot, handing it to the longest waiter if any.
    public func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            if state.waiters.isEmpty {
                state.running -= 1
                return nil
            }
            return state.waiters.removeFirst().continuation
        }
        next?.resume()
    }
}
