/// A task executor whose jobs run on the thread that drives it: a CGI program's synchronous
/// `main` serves its request without a thread pool, a dispatch queue or an async `main`.
import Dispatch
import Synchronization

/// Runs every job on the thread that calls ``run(until:)``; a job enqueued from elsewhere (a
/// timer) wakes that thread.
///
/// Why not an async `main`: the runtime parks an async `main`'s thread with `dispatch_main`,
/// which ends in `pthread_exit`, and in a binary linked with `-static-executable` that forced
/// unwind makes libgcc sort every frame description of the image first, which costs a CGI
/// request more than the rest of its start. A synchronous `main` that drives its own jobs
/// never exits a thread.
final class CGIThreadExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: the queue is in a Mutex; the semaphore is thread-safe.
    private let jobs = Mutex<[UnownedJob]>([])
    private let available = DispatchSemaphore(value: 0)

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.append(job) }
        available.signal()
    }

    /// Runs jobs on the calling thread, waiting for more while `isDone()` is false.
    func run(until isDone: () -> Bool) {
        let me = asUnownedTaskExecutor()
        while !isDone() {
            available.wait()
            let job = jobs.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            job?.runSynchronously(on: me)
        }
    }
}
