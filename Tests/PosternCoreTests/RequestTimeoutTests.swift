// RequestTimeout (--timeout): the answer, the deadline, the caller's cancellation, and the count
// of abandoned tasks that the status endpoint shows.
import Synchronization
import Testing

@testable import PosternCore
@testable import PosternEngine

@Suite("RequestTimeout")
struct RequestTimeoutTests {
    /// An application call that sleeps a minute unless cancelled, and notes its cancellation.
    final class Sleeper: Sendable {
        private let cancelled = Mutex(false)
        var wasCancelled: Bool { cancelled.withLock { $0 } }
        func run() async throws -> Response {
            do {
                try await Task.sleep(for: .seconds(60))
            } catch {
                cancelled.withLock { $0 = true }
                throw error
            }
            return .text("slept\n")
        }
    }

    @Test("an answer before the deadline is returned, and nothing is counted")
    func answerInTime() async throws {
        let counts = RecordingObserver()
        let response = try await RequestTimeout.run(seconds: 5, observer: counts) { .text("done\n") }
        #expect(response?.status.code == 200)
        #expect(counts.abandonedTasks == 0)
    }

    @Test("past the deadline: nil at once, the task is cancelled; one that ignores it is counted until it ends")
    func deadlineWithAStubbornTask() async throws {
        let counts = RecordingObserver()
        let release = AsyncStream<Void>.makeStream()
        let start = ContinuousClock.now
        let response = try await RequestTimeout.run(seconds: 0.2, observer: counts) {
            // Ignores cancellation: a detached task is not cancelled with this one, and it waits
            // for the test to let it go (an AsyncStream's iteration itself ends on cancellation).
            let stream = release.stream
            await Task.detached { for await _ in stream {} }.value
            return .text("late\n")
        }
        #expect(response == nil)
        #expect(ContinuousClock.now - start < .seconds(10))
        // Counted by the time the caller sees the deadline (what a status request after a 504 reads).
        #expect(counts.abandonedTasks == 1)
        release.continuation.finish()
        var left = 1
        for _ in 0..<500 where left != 0 {
            try await Task.sleep(for: .milliseconds(10))
            left = counts.abandonedTasks
        }
        #expect(left == 0, "the task ended but is still counted")
    }

    @Test("past the deadline, a task that honours cancellation ends and is not left counted")
    func deadlineWithACooperativeTask() async throws {
        let counts = RecordingObserver()
        let sleeper = Sleeper()
        let response = try await RequestTimeout.run(seconds: 0.2, observer: counts) { try await sleeper.run() }
        #expect(response == nil)
        var settled = false
        for _ in 0..<500 where !settled {
            try await Task.sleep(for: .milliseconds(10))
            settled = sleeper.wasCancelled && counts.abandonedTasks == 0
        }
        #expect(settled, "cancelled: \(sleeper.wasCancelled), counted: \(counts.abandonedTasks)")
    }

    @Test("the caller cancelled: CancellationError at once, the task cancelled, nothing counted")
    func callerCancelled() async throws {
        let counts = RecordingObserver()
        let sleeper = Sleeper()
        let caller = Task {
            try await RequestTimeout.run(seconds: 60, observer: counts) { try await sleeper.run() }
        }
        try await Task.sleep(for: .milliseconds(50))
        caller.cancel()
        await #expect(throws: CancellationError.self) { try await caller.value }
        for _ in 0..<500 where !sleeper.wasCancelled { try await Task.sleep(for: .milliseconds(10)) }
        #expect(sleeper.wasCancelled)
        #expect(counts.abandonedTasks == 0)
    }
}
