import NIOPosix
import Synchronization

/// Runs one request's task on the thread that accepted its connection, for as long as that
/// thread drives it; after that, its jobs go to SwiftNIO's event loops (the global executor when
/// `ConcurrencyExecutor` is not installed).
///
/// A request whose application answers without waiting for anything outside its task (the
/// common case: hello, a template, a computation) then costs no thread hop at all: the job
/// starts, runs and finishes on the accepting thread. An application that waits (a timer, a
/// database on another event loop, an actor) leaves the queue empty while its task is not done;
/// the thread then ``release()``s the executor and goes back to accepting, and the task goes on
/// wherever its next job is enqueued.
///
/// ```
///   Task(executorPreference: self) ─► enqueue ─► queue ─► drive(): run on this thread
///                                                          │ queue empty, task not done
///                                                          ▼
///                       later enqueues ─────────────► release(): global executor
/// ```
final class InlineTaskExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: all mutable state is inside `state`, a Mutex.
    private enum State {
        case driving([UnownedJob])
        case released
    }
    private let state = Mutex<State>(.driving([]))

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let queued = state.withLock { state -> Bool in
            guard case .driving(var jobs) = state else { return false }
            state = .released  // no copy of the array while appending
            jobs.append(unowned)
            state = .driving(jobs)
            return true
        }
        if !queued { Self.enqueueElsewhere(unowned) }
    }

    /// Runs the queued jobs on the calling thread until `isDone()` holds (`true`) or the queue
    /// is empty with the work not done (`false`: the task waits for something outside).
    func drive(until isDone: () -> Bool) -> Bool {
        let me = asUnownedTaskExecutor()
        while true {
            if isDone() { return true }
            let next = state.withLock { state -> UnownedJob? in
                guard case .driving(var jobs) = state, !jobs.isEmpty else { return nil }
                state = .released
                let job = jobs.removeFirst()
                state = .driving(jobs)
                return job
            }
            guard let next else { return isDone() }
            next.runSynchronously(on: me)
        }
    }

    /// The driving thread moves on: queued and later jobs go to the global executor.
    func release() {
        let left = state.withLock { state -> [UnownedJob] in
            defer { state = .released }
            if case .driving(let jobs) = state { return jobs }
            return []
        }
        for job in left { Self.enqueueElsewhere(job) }
    }

    /// Where a released task's jobs go: an event loop when the loops are Swift concurrency's
    /// global executor (``ConcurrencyExecutor``). `globalConcurrentExecutor` would not do: it is
    /// the runtime's default pool, which the global-enqueue hook does not reach, so each job
    /// of a task that waited (a CGI script's run, a timer) would hop to a Dispatch thread and
    /// back to an event loop for its I/O.
    static func enqueueElsewhere(_ job: UnownedJob) {
        if ConcurrencyExecutor.install() {
            MultiThreadedEventLoopGroup.singleton.any().enqueue(ExecutorJob(job))
        } else {
            globalConcurrentExecutor.enqueue(ExecutorJob(job))
        }
    }
}
