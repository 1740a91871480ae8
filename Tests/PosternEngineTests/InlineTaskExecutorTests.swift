import Synchronization
import Testing

@testable import PosternRuntime

#if canImport(Glibc)
import Glibc
#endif

/// The fast path's executor: a task runs on the thread that drives it until it waits for
/// something outside; then its jobs go to the global executor.
@Suite struct InlineTaskExecutorTests {
    @Test func aTaskThatNeverWaitsRunsOnTheDrivingThread() async {
        let executor = InlineTaskExecutor()
        let ranOn = Mutex<pthread_t?>(nil)
        let done = Atomic<Bool>(false)
        let task = Task(executorPreference: executor) {
            ranOn.withLock { $0 = pthread_self() }
            done.store(true, ordering: .releasing)
        }
        let finished = executor.drive { done.load(ordering: .acquiring) }
        #expect(finished)
        let thread = ranOn.withLock { $0 }
        #expect(thread.map { pthread_equal($0, pthread_self()) != 0 } == true)
        executor.release()
        await task.value
    }

    @Test func aTaskThatWaitsIsReleasedAndFinishesElsewhere() async {
        let executor = InlineTaskExecutor()
        let done = Atomic<Bool>(false)
        let task = Task(executorPreference: executor) {
            try? await Task.sleep(for: .milliseconds(50))
            done.store(true, ordering: .releasing)
        }
        #expect(!executor.drive { done.load(ordering: .acquiring) })
        executor.release()
        await task.value
        let finished = done.load(ordering: .acquiring)
        #expect(finished)
    }

    /// Child tasks inherit the preference: a task group's children run inline too.
    @Test func childTasksRunInline() async {
        let executor = InlineTaskExecutor()
        let sum = Atomic<Int>(0)
        let done = Atomic<Bool>(false)
        let task = Task(executorPreference: executor) {
            await withTaskGroup(of: Int.self) { group in
                for value in 1...10 { group.addTask { value } }
                for await value in group { sum.add(value, ordering: .relaxed) }
            }
            done.store(true, ordering: .releasing)
        }
        #expect(executor.drive { done.load(ordering: .acquiring) })
        let total = sum.load(ordering: .relaxed)
        #expect(total == 55)
        executor.release()
        await task.value
    }
}
