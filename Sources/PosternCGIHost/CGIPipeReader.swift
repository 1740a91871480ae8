import NIOCore
import Synchronization

/// A script's stdout or stderr, read by the run's own task: no channel, no event loop.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads one pipe from a script. ``read()`` tries read(2) at once and asks ``CGIReactor`` to wait
/// only when the pipe is empty, so a script's few bytes cost a read or two, not a SwiftNIO
/// channel (fstat, registration, a pipeline, an async sequence) per pipe and request. The
/// reader owns the descriptor (non-blocking from here on) and closes it in ``close()``, which
/// also ends a ``read()`` waiting for data.
final class CGIPipeReader: Sendable {
    struct ReadError: Error, CustomStringConvertible {
        let errno: Int32
        var description: String { "read from the script's pipe failed: \(String(cString: strerror(errno)))" }
    }

    private struct State {
        var closed = false
        var registered = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private enum Attempt {
        case bytes(ByteBuffer)
        case end
        case empty
        case failed(Int32)
    }

    let fd: Int32
    private let reactor: CGIReactor
    private let state = Mutex(State())

    init(fd: Int32, reactor: CGIReactor) {
        self.fd = fd
        self.reactor = reactor
        // A pipe's only status flag that matters is this one: no F_GETFL first.
        _ = fcntl(fd, F_SETFL, O_NONBLOCK)
    }

    /// The next bytes the script wrote; nil at the end (every writer closed the pipe, or
    /// ``close()`` was called).
    func read() async throws -> ByteBuffer? {
        while true {
            switch attempt() {
            case .bytes(let bytes): return bytes
            case .end: return nil
            case .failed(let code): throw ReadError(errno: code)
            case .empty:
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let waiting = state.withLock { state -> Bool in
                        guard !state.closed else { return false }
                        let add = !state.registered
                        guard reactor.arm(fd, add: add, { [self] in wake() }) else { return false }
                        state.registered = true
                        state.waiter = continuation
                        return true
                    }
                    if !waiting { continuation.resume() }
                }
            // Woken, closed, or the reactor refused: the next attempt tells which (a refusal
            // is rare enough that trying again at once is acceptable).
            }
        }
    }

    /// Closes the pipe (idempotent); a ``read()`` waiting for data returns nil.
    /// What the pipe holds right now, without waiting.
    enum Ready {
        case bytes(ByteBuffer)
        case end
        case empty
    }

    /// Reads what is there without waiting: bytes, the end, or nothing yet.
    func readIfReady() throws -> Ready {
        switch attempt() {
        case .bytes(let bytes): return .bytes(bytes)
        case .end: return .end
        case .empty: return .empty
        case .failed(let code): throw ReadError(errno: code)
        }
    }

    func close() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.closed else { return nil }
            state.closed = true
            if state.registered { reactor.forget(fd) }
            _ = Glibc.close(fd)
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    private func wake() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Bytes a read takes at first: a small script's whole output, read straight into the
    /// buffer it is answered with (no 64 KiB scratch to allocate and copy out of per read). A
    /// read that fills it is followed by reads of up to ``largeReadBytes`` (a pipe holds 64 KiB),
    /// so a big output still costs few reads.
    static let smallReadBytes = 4096
    static let largeReadBytes = 65_536

    /// read(2) until the pipe is empty or ``largeReadBytes`` are in, under the lock so that
    /// ``close()`` never closes the descriptor mid-read.
    private func attempt() -> Attempt {
        state.withLock { state -> Attempt in
            guard !state.closed else { return .end }
            var bytes = ByteBuffer()
            var want = Self.smallReadBytes
            while true {
                var failure: Int32 = 0
                let count = bytes.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { space in
                    let count = Glibc.read(fd, space.baseAddress, want)
                    if count < 0 { failure = errno }
                    return max(0, count)
                }
                if count > 0 {
                    // A full read may have left more: read on (the next read finds EAGAIN, or
                    // the end, when it has not).
                    guard count == want, bytes.readableBytes < Self.largeReadBytes else { return .bytes(bytes) }
                    want = Self.largeReadBytes - bytes.readableBytes
                    continue
                }
                if bytes.readableBytes > 0 { return .bytes(bytes) }  // the rest comes next time
                if failure == 0 { return .end }
                switch failure {
                case EINTR: continue
                case EAGAIN, EWOULDBLOCK: return .empty
                default: return .failed(failure)
                }
            }
        }
    }
}
