// Supervision's pure values, without processes: how a child's wait status is read, and the
// restart backoff a crash loop waits out.

import Testing

@testable import PosternSupervision

#if canImport(Glibc)
import Glibc
#endif

@Suite("Supervision values")
struct SupervisionTests {
    @Test("a wait status decodes as waitpid's macros say: exit code, or the signal that ended it")
    func childExit() {
        #expect(ChildExit(waitStatus: 0) == .code(0))
        #expect(ChildExit(waitStatus: 64 << 8) == .code(64))
        #expect(ChildExit(waitStatus: 255 << 8) == .code(255))
        #expect(ChildExit(waitStatus: SIGKILL) == .signal(SIGKILL))
        // A core dump sets 0x80 beside the signal number.
        #expect(ChildExit(waitStatus: SIGSEGV | 0x80) == .signal(SIGSEGV))
        #expect(ChildExit.code(64).isConfigurationError && ChildExit.code(78).isConfigurationError)
        #expect(!ChildExit.code(1).isConfigurationError && !ChildExit.signal(64).isConfigurationError)
        #expect("\(ChildExit.code(3))" == "exit 3" && "\(ChildExit.signal(9))" == "signal 9")
    }

    @Test("the backoff doubles from its start with each crash in a row and stops at its maximum")
    func restartBackoff() {
        let backoff = RestartBackoff(start: .milliseconds(100), maximum: .seconds(10))
        #expect(backoff.delay(afterCrashes: 0) == .zero)
        #expect((1...8).map { backoff.delay(afterCrashes: $0) } == [100, 200, 400, 800, 1600, 3200, 6400, 10_000].map { .milliseconds($0) })
        // Far past the cap (and past any shift that could overflow), still the maximum.
        #expect(backoff.delay(afterCrashes: 1_000) == .seconds(10))
    }
}
