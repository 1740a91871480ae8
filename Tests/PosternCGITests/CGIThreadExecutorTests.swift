import Synchronization
import Testing

@testable import PosternCGI

#if canImport(Glibc)
import Glibc
#endif

/// The executor behind a synchronous CGI `main`: every job on the driving thread, and a job
/// enqueued from elsewhere (a timer) wakes it.
@Suite struct CGIThreadExecutorTests {
    @Test func jobsRunOnTheDrivingThreadAcrossAWaitForAnotherThread() {
        let executor = CGIThreadExecutor()
        let threads = Mutex<[pthread_t]>([])
        let done = Atomic<Bool>(false)
        Task(executorPreference: executor) {
            threads.withLock { $0.append(pthread_self()) }
            try? await Task.sleep(for: .milliseconds(20))  // resumed by a timer on another thread
            threads.withLock { $0.append(pthread_self()) }
            done.store(true, ordering: .releasing)
        }
        executor.run { done.load(ordering: .acquiring) }
        let seen = threads.withLock { $0 }
        #expect(seen.count == 2)
        #expect(seen.allSatisfy { pthread_equal($0, pthread_self()) != 0 })
    }
}
