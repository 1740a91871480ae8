// Raw POSIX sockets for hostile clients: open many, send a fragment, half-close, watch for the close.
import Foundation
import NIOCore
import NIOPosix
import PosternTestSupport

enum HostileSocket {
    /// Runs blocking socket work on a thread of its own: the tests hold many sockets for seconds,
    /// which would starve NIO's small shared thread pool (and the servers under test with it).
    static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result { try body() })
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Raises the soft open-file limit to at least `wanted` (bounded by the hard limit).
    static func raiseFileLimit(to wanted: rlim_t) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < wanted else { return }
        limit.rlim_cur = min(wanted, limit.rlim_max)
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    /// Opens `count` connections to 127.0.0.1:`port` and sends `fragment` on each.
    static func openIdle(port: Int, count: Int, fragment: [UInt8]) async throws -> [Int32] {
        try await onThread {
            var fds: [Int32] = []
            do {
                for _ in 0..<count {
                    let fd = try BlockingClient.connectTCP(port: port)
                    fds.append(fd)
                    if !fragment.isEmpty { try BlockingClient.sendAll(fd, fragment) }
                }
            } catch {
                fds.forEach { close($0) }
                throw error
            }
            return fds
        }
    }

    /// Waits until the server has closed every one of `fds` (EOF or reset, after reading any
    /// error response); returns how many are still open at `timeout`. Closes them all.
    static func waitUntilClosedByServer(_ fds: [Int32], timeout: Double) async -> Int {
        await (try? onThread {
            var open = Set(fds)
            let deadline = Date().addingTimeInterval(timeout)
            var scratch = [UInt8](repeating: 0, count: 4096)
            while !open.isEmpty, Date() < deadline {
                var polls = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
                _ = poll(&polls, nfds_t(polls.count), 100)
                for entry in polls where entry.revents != 0 {
                    let n = recv(entry.fd, &scratch, scratch.count, Int32(MSG_DONTWAIT))
                    if n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { open.remove(entry.fd) }
                }
            }
            fds.forEach { close($0) }
            return open.count
        }) ?? fds.count
    }

    /// Reads from `fd` until the peer closes, at most `limit` bytes or `timeout` seconds; nil on timeout.
    static func readUntilClose(_ fd: Int32, timeout: Double, limit: Int = 64 << 20) -> [UInt8]? {
        var out: [UInt8] = []
        var scratch = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline, out.count < limit {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 100) > 0 else { continue }
            let n = recv(fd, &scratch, scratch.count, Int32(MSG_DONTWAIT))
            if n > 0 { out += scratch[0..<n]; continue }
            if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) { return out }
        }
        return nil
    }

    /// Reads at least `count` bytes (or until close / timeout) and returns them.
    static func read(_ fd: Int32, atLeast count: Int, timeout: Double) -> [UInt8] {
        var out: [UInt8] = []
        var scratch = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline, out.count < count {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 100) > 0 else { continue }
            let n = recv(fd, &scratch, scratch.count, Int32(MSG_DONTWAIT))
            if n > 0 { out += scratch[0..<n] } else if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) { break }
        }
        return out
    }

    /// Runs `body` with a connected socket on the thread pool, closing it afterwards.
    static func withConnection<T: Sendable>(port: Int, _ body: @escaping @Sendable (Int32) throws -> T) async throws -> T {
        try await onThread {
            let fd = try BlockingClient.connectTCP(port: port)
            defer { close(fd) }
            return try body(fd)
        }
    }
}
