import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One signal sent to one thread of this process, at a chosen moment: SIGURG, with a handler
/// that does nothing, so the blocking call it lands in fails with `EINTR`.
enum ThreadSignal {
    static func installHandler() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGURG, &action, nil)
    }

    /// The calling thread's id (`gettid`, from `/proc/thread-self`).
    static func currentThread() -> Int32 {
        let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self")) ?? ""
        return Int32(link.split(separator: "/").last ?? "") ?? 0
    }

    private typealias ThreadKill = @convention(c) (pid_t, pid_t, Int32) -> Int32
    /// glibc's `tgkill` (not in Swift's Glibc module).
    private static let tgkill = unsafeBitCast(dlsym(nil, "tgkill")!, to: ThreadKill.self)

    /// Sends SIGURG to `thread` of this process.
    static func send(to thread: Int32) -> Bool {
        tgkill(getpid(), thread, SIGURG) == 0
    }

    /// Whether `thread` is blocked in `poll` or `ppoll` (`/proc/self/task/N/syscall`).
    static func isInPoll(_ thread: Int32) -> Bool {
        #if arch(x86_64)
        let calls: Set<Substring> = ["7", "271"]
        #else
        let calls: Set<Substring> = ["73"]  // aarch64: ppoll
        #endif
        let line = (try? String(contentsOfFile: "/proc/self/task/\(thread)/syscall", encoding: .utf8)) ?? ""
        return line.split(separator: " ").first.map { calls.contains($0) } ?? false
    }
}
