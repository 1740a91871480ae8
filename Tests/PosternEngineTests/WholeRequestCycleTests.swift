import Foundation
import Testing

@testable import PosternRuntime

#if canImport(Glibc)
import Glibc
#endif

/// The fast path's wait for a request's first bytes (``WholeRequestCycle/firstRead(_:into:)``).
@Suite struct WholeRequestCycleTests {
    /// A thread that takes a signal while it waits (a handler runs, so `poll` fails with
    /// `EINTR`) still gets the bytes that arrive within the wait, instead of giving up at the
    /// signal and sending the connection to the full engine.
    @Test func aSignalDoesNotCutTheFirstBytesWaitShort() async throws {
        ThreadSignal.installHandler()
        var results: [(count: Int, errno: Int32)] = []
        // The signal lands while the thread is in `poll`, the byte follows 0.2 ms later; a
        // starved machine may write after the 2 ms wait, so one of a few tries must get it
        // (before the fix, every try ended with EINTR).
        for _ in 0..<10 where !results.contains(where: { $0.count == 1 }) {
            results.append(await Self.wait(signalled: true, writeAfterMicroseconds: 200))
        }
        #expect(results.contains { $0.count == 1 }, "\(results)")
    }

    /// Nothing arrives: the wait ends after its 2 ms with `EAGAIN`, signalled or not.
    @Test(arguments: [false, true]) func aSilentPeerEndsTheWaitWithEAGAIN(signalled: Bool) async throws {
        ThreadSignal.installHandler()
        let result = await Self.wait(signalled: signalled, writeAfterMicroseconds: nil)
        #expect(result.count == -1 && result.errno == EAGAIN, "\(result)")
    }

    /// `firstRead` on a fresh socket pair, on a thread of its own that takes SIGURG; another
    /// thread sends it SIGURG once it is inside `poll` (`signalled`), then writes a byte.
    static func wait(signalled: Bool, writeAfterMicroseconds: UInt32?) async -> (count: Int, errno: Int32) {
        await withCheckedContinuation { continuation in
            Thread {
                var unblock = sigset_t()
                sigemptyset(&unblock)
                sigaddset(&unblock, SIGURG)
                pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
                var pair: [Int32] = [0, 0]
                socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair)
                defer {
                    close(pair[0])
                    close(pair[1])
                }
                let thread = ThreadSignal.currentThread()
                let writer = pair[1]
                let done = DispatchSemaphore(value: 0)
                Thread {
                    if signalled {
                        // Until the waiter is in poll (or gives up after 2 ms, a starved machine).
                        let start = DispatchTime.now().uptimeNanoseconds
                        while !ThreadSignal.isInPoll(thread), DispatchTime.now().uptimeNanoseconds - start < 2_000_000 { sched_yield() }
                        _ = ThreadSignal.send(to: thread)
                    }
                    if let delay = writeAfterMicroseconds {
                        usleep(delay)
                        _ = write(writer, "x", 1)
                    }
                    done.signal()
                }.start()
                let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 16)
                defer { scratch.deallocate() }
                let count = WholeRequestCycle.firstRead(pair[0], into: scratch)
                let error = errno
                done.wait()  // the sockets stay open until the other thread is done with them
                continuation.resume(returning: (count, error))
            }.start()
        }
    }
}
