import NIOCore
import PosternCore
import Synchronization

/// One running FastCGI request as the connection sees it: its input streams, the application's
/// task (so ABORT_REQUEST can cancel it), FCGI_STDERR output waiting to be sent, and whether all
/// its input has arrived (END_REQUEST waits for that, so unread input is drained first).
final class FastCGIRequestHandle: Sendable {
    let requestID: UInt16
    let keepConnection: Bool
    let body: RequestBodySource?
    let data: RequestBodySource?
    /// What the application wrote to its error stream, on its way out as FCGI_STDERR.
    let stderr = FastCGIStderrQueue()

    private struct State {
        var inputComplete = false
        var inputWaiter: CheckedContinuation<Void, Never>?
        /// The request's own task while it runs the application (see ``runCancellable(_:)``).
        var task: RunningTask?
        var aborted = false
    }

    private let state: Mutex<State>

    init(requestID: UInt16, keepConnection: Bool, body: RequestBodySource?, data: RequestBodySource?, inputComplete: Bool) {
        self.requestID = requestID
        self.keepConnection = keepConnection
        self.body = body
        self.data = data
        var initial = State()
        initial.inputComplete = inputComplete
        self.state = Mutex(initial)
    }

    // MARK: Input

    /// STDIN (and DATA, for a FILTER) have ended, or the connection is gone.
    func markInputComplete() {
        let waiter = state.withLock { state in
            state.inputComplete = true
            defer { state.inputWaiter = nil }
            return state.inputWaiter
        }
        waiter?.resume()
    }

    var isInputComplete: Bool { state.withLock { $0.inputComplete } }

    /// Suspends until ``markInputComplete()``.
    func waitForInputComplete() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.inputComplete { return true }
                state.inputWaiter = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }

    // MARK: The application's task

    /// The request's task, cancellable from the read loop while the application runs.
    ///
    /// `UnsafeCurrentTask` is only valid while its task runs: it is stored under the lock for
    /// exactly the span of ``runCancellable(_:)`` and cancelled only under that lock, so it is
    /// never used after the task has moved on. This saves an extra task (and a thread hop) per
    /// request compared with wrapping the application in an unstructured `Task`.
    struct RunningTask: @unchecked Sendable {
        let task: UnsafeCurrentTask
    }

    /// Runs `operation` (the application) so that ``abort()`` cancels the calling task.
    func runCancellable<T>(_ operation: () async throws -> T) async throws -> T {
        withUnsafeCurrentTask { current in
            guard let current else { return }
            let cancelNow = state.withLock { state in
                state.task = RunningTask(task: current)
                return state.aborted
            }
            if cancelNow { current.cancel() }
        }
        defer { state.withLock { $0.task = nil } }
        return try await operation()
    }

    /// ABORT_REQUEST (§5.4), or the connection closed: cancel the application, and stop waiting
    /// for input (the front-end sends no more of an aborted request's STDIN or DATA; what still
    /// comes after END_REQUEST is for an inactive id and ignored, §3.3).
    func abort() {
        let waiter = state.withLock { state in
            state.aborted = true
            state.task?.task.cancel()
            state.inputComplete = true
            defer { state.inputWaiter = nil }
            return state.inputWaiter
        }
        body?.fail(CancellationError())
        data?.fail(CancellationError())
        waiter?.resume()
    }

    var wasAborted: Bool { state.withLock { $0.aborted } }
}
