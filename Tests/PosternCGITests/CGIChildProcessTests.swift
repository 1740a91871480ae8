// The spawn of a CGI script, without a server: what it leaves in the thread that started it.
import Foundation
import PosternCGIHost
import Testing

@Suite struct CGIChildProcessTests {
    static func isBlocked(_ signal: Int32) -> Bool {
        var current = sigset_t()
        pthread_sigmask(SIG_BLOCK, nil, &current)
        return sigismember(&current, signal) == 1
    }

    /// A thread that blocks asynchronous signals (as the event loops and accept threads do) and
    /// starts a script no longer blocks SIGCHLD, so the script's exit is discarded where it is
    /// raised instead of waking the main thread; it exits 0 and is reaped all the same.
    @Test func aSpawningThreadLetsSIGCHLDBeIgnored() throws {
        var disposition = sigaction()
        sigaction(SIGCHLD, nil, &disposition)
        try #require(disposition.__sigaction_handler.sa_handler == nil, "SIGCHLD has a handler or is ignored in the test process")
        let outcome: (before: Bool, after: Bool, status: Int32?) = try Thread.runBlocking {
            var all = sigset_t()
            sigfillset(&all)
            pthread_sigmask(SIG_BLOCK, &all, nil)
            let before = Self.isBlocked(SIGCHLD)
            let child = try CGIChildProcess(executable: "/bin/true", arguments: [], environment: [], directory: "/", withStdin: false)
            defer {
                close(child.stdoutRead)
                close(child.stderrRead)
            }
            let after = Self.isBlocked(SIGCHLD)
            var status = child.tryReap()
            for _ in 0..<5000 where status == nil {
                usleep(1000)
                status = child.tryReap()
            }
            return (before, after, status)
        }
        #expect(outcome.before, "the thread blocked SIGCHLD before the spawn")
        #expect(!outcome.after, "SIGCHLD is still blocked after the spawn")
        #expect(outcome.status == 0)
    }
}

extension Thread {
    /// Runs `body` on a new thread (its signal mask its own) and returns what it returned.
    static func runBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: Result<T, any Error>?
        let thread = Thread {
            result = Result { try body() }
            done.signal()
        }
        thread.start()
        done.wait()
        return try result!.get()
    }
}
