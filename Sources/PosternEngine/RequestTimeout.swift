import PosternCore
import Synchronization

/// Runs the application for one request with a deadline (`--timeout`): the application runs in a
/// task of its own, so that when the deadline passes the request is answered at once (504) and
/// the task is cancelled *without being awaited*. An application that ignores cancellation keeps
/// running on its own, reported through ``RequestObserver/abandonedTasksChanged(by:)``; it never
/// stalls the connection, and holds only what `operation` holds (in ``GatewayConfiguration``,
/// its `--max-concurrency` slot, until it really ends).
///
/// The same detachment covers the request's own cancellation (client gone): the caller returns
/// at once, whatever the application does.
enum RequestTimeout {
    /// The application's response, or `nil` when the deadline passed first.
    static func run(
        seconds: Double,
        observer: (any RequestObserver)?,
        _ operation: @escaping @Sendable () async throws -> Response
    ) async throws -> Response? {
        let race = Race()
        let work = Task { try await operation() }
        let timer = Task {
            try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
            // Counted before the 504 is released: whoever sees the 504 sees the task counted.
            _ = race.resolve(.success(nil), timedOut: true) {
                work.cancel()
                observer?.abandonedTasksChanged(by: 1)
            }
        }
        Task {
            let result = await work.result
            timer.cancel()
            if !race.resolve(result.map { Optional($0) }, timedOut: false), race.didTimeOut {
                observer?.abandonedTasksChanged(by: -1)
            }
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                race.install(continuation)
            }
        } onCancel: {
            work.cancel()
            timer.cancel()
            _ = race.resolve(.failure(CancellationError()), timedOut: false)
        }
    }

    /// The first of (application result, deadline, cancellation) wins; the others are ignored.
    final class Race: Sendable {
        private struct State {
            var continuation: CheckedContinuation<Response?, any Error>?
            var result: Result<Response?, any Error>?
            var resolved = false
            var timedOut = false
        }
        private let state = Mutex(State())

        var didTimeOut: Bool { state.withLock { $0.timedOut } }

        func install(_ continuation: CheckedContinuation<Response?, any Error>) {
            let ready = state.withLock { state -> Result<Response?, any Error>? in
                if let result = state.result { return result }
                state.continuation = continuation
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }

        /// `true` if this outcome won; `whenWon` runs before the waiting request is resumed.
        func resolve(_ result: Result<Response?, any Error>, timedOut: Bool, whenWon: () -> Void = {}) -> Bool {
            let (won, continuation) = state.withLock { state -> (Bool, CheckedContinuation<Response?, any Error>?) in
                guard !state.resolved else { return (false, nil) }
                state.resolved = true
                state.timedOut = timedOut
                defer { state.continuation = nil }
                return (true, state.continuation)
            }
            guard won else { return false }
            whenWon()
            // Not waiting yet: the result is left for `install`, unless it came meanwhile.
            let waiting =
                continuation
                ?? state.withLock { state in
                    if let late = state.continuation {
                        state.continuation = nil
                        return late
                    }
                    state.result = result
                    return nil
                }
            waiting?.resume(with: result)
            return true
        }
    }
}
